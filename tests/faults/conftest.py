"""Deployments for the fault tests: real nodes on PostgreSQL, with or without Redis.

The services come from ``tests.infra.fixtures`` (``postgres_database``,
``redis``, ``nginx_factory``). Each test gets its own database with the
schema migrated and the demo course seeded (``demo-teacher``,
``demo-student-1..5`` approved), and every node it started is killed after it.
When a test fails, the tail of each node's log is printed with the failure.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.infra.redis import RedisServer
from tests.process import ServerProcess, cli_env, run_cli


@dataclass
class Deployment:
    """Nodes sharing one database (and Redis, when ``redis_url`` is set)."""

    tmp: Path
    env: dict[str, str]
    demo: dict[str, Any]
    nodes: dict[str, ServerProcess] = field(default_factory=dict)

    def node(self, name: str) -> ServerProcess:
        """A node (not started yet), its log in ``<tmp>/<name>.log``."""
        node = ServerProcess(self.env, self.tmp / f"{name}.log")
        self.nodes[name] = node
        return node

    async def start(self, *names: str) -> list[ServerProcess]:
        """Start nodes side by side; return them once each answers /healthz."""
        nodes = [self.node(name) for name in names]
        await asyncio.gather(*(node.start() for node in nodes))
        return nodes

    async def close(self) -> None:
        for node in self.nodes.values():
            await node.stop()

    def logs(self) -> str:
        return "\n".join(
            f"----- node {name} ({node.url}) -----\n{node.log()}" for name, node in self.nodes.items()
        )


def full_log(node: ServerProcess) -> str:
    """A node's whole log (``ServerProcess.log()`` keeps only the tail)."""
    return node.log_path.read_text(errors="replace") if node.log_path.exists() else ""


def assert_clean_log(node: ServerProcess) -> None:
    """No traceback and no task destroyed while pending in the node's log."""
    log = full_log(node)
    for bad in ("Traceback", "Task was destroyed but it is pending", "Exception in ASGI application"):
        assert bad not in log, f"{bad!r} in the log of {node.url}:\n{log[-6000:]}"


def prepare_database(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """``attendance-live migrate`` then ``demo --json`` (what an operator does on PostgreSQL)."""
    migrated = run_cli("migrate", env=env, cwd=cwd)
    assert migrated.returncode == 0, f"migrate failed:\n{migrated.stdout}\n{migrated.stderr}"
    seeded = run_cli("demo", "--json", env=env, cwd=cwd)
    assert seeded.returncode == 0, f"demo failed:\n{seeded.stdout}\n{seeded.stderr}"
    demo: dict[str, Any] = json.loads(seeded.stdout)
    return demo


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@asynccontextmanager
async def _deployment(
    request: pytest.FixtureRequest, tmp_path: Path, env: dict[str, str]
) -> AsyncIterator[Deployment]:
    demo = await asyncio.to_thread(prepare_database, env, tmp_path)
    deployment = Deployment(tmp_path, env, demo)
    try:
        yield deployment
    finally:
        await deployment.close()
        if request.node.stash.get(_FAILED, False):
            print(deployment.logs())


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str, redis_running: RedisServer
) -> AsyncIterator[Deployment]:
    """PostgreSQL + Redis, migrated and seeded; start nodes with ``await cluster.start("a", "b")``."""
    env = cli_env(postgres_database, REDIS_URL=redis_running.url)
    async with _deployment(request, tmp_path, env) as deployment:
        yield deployment


@pytest.fixture
async def single(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str
) -> AsyncIterator[Deployment]:
    """PostgreSQL without Redis (one node), migrated and seeded."""
    env = cli_env(postgres_database)
    async with _deployment(request, tmp_path, env) as deployment:
        yield deployment

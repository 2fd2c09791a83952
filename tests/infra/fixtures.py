"""pytest fixtures for real services on loopback; register with ``pytest_plugins``.

    # tests/conftest.py
    pytest_plugins = ["tests.infra.fixtures"]

Session-scoped: ``postgres_server`` and ``redis_server``, one of each for the
whole run, started the first time a test asks for them and killed at the end
of the session, also when tests fail. Per test: ``postgres_database`` (a fresh
database, its DSN), ``redis_running`` (the session's Redis, started again if an
earlier test left it stopped) and ``nginx_factory`` (nginx in front of the
test's nodes). A missing service is installed from Debian's packages when
possible; otherwise the test fails (never skips) with the command to run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.infra._process import ServiceUnavailable
from tests.infra.nginx import NginxServer
from tests.infra.postgres import PostgresServer
from tests.infra.redis import RedisServer

__all__ = [
    "nginx_factory",
    "postgres_database",
    "postgres_server",
    "redis_running",
    "redis_server",
]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session: ``.dsn(db)``, ``.create_database()``, ``.stop()``/``.start()``."""
    try:
        server = PostgresServer()
        server.start()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test (dropped after it); the value is its DSN.

    The server is (re)started first if an earlier test left it stopped.
    """
    if not postgres_server.running:
        postgres_server.start()
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.create_database(name)
    try:
        yield dsn
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the session: ``.url``, ``.stop()``/``.start()``/``.kill()``."""
    try:
        server = RedisServer()
        server.start()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_running(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, running at the start of the test and again after it.

    Pub/sub channels are server-wide, so tests that share it must not run
    nodes at the same time (they don't: each test stops its own nodes).
    """
    if not redis_server.running:
        redis_server.start()
    yield redis_server
    if not redis_server.running:
        redis_server.start()


@pytest.fixture
def nginx_factory() -> Iterator[Callable[[Sequence[str]], NginxServer]]:
    """``nginx_factory(["127.0.0.1:PORT", ...])`` starts nginx in front of those nodes (stopped after)."""
    started: list[NginxServer] = []

    def start(nodes: Sequence[str]) -> NginxServer:
        try:
            server = NginxServer(nodes)
            started.append(server)
            server.start()
        except ServiceUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.close()

"""Fixtures: a migrated database, the app with its lifespan, HTTP, a live server.

``ATTENDANCE_TEST_DATABASE=postgresql`` runs every test that uses ``database_url``
against a fresh database on a real PostgreSQL server (started by
``tests.infra``); the default is a SQLite file per test.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from attendance_live.app import Application, create_app
from attendance_live.auth.tokens import TokenService
from attendance_live.config import Settings
from attendance_live.db.engine import Database
from attendance_live.db.migrate import upgrade
from tests.helpers import SECRET, FakeClock, World, build_world
from tests.infra import free_port

pytest_plugins = ["tests.infra.fixtures"]

TEST_DATABASE = os.environ.get("ATTENDANCE_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"ATTENDANCE_TEST_DATABASE={TEST_DATABASE!r}: use sqlite or postgresql")


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """The root logger's handlers and level as they were before the test.

    ``configure_logging`` (``cli.main`` in process, the log tests) binds a handler to the
    test's captured stderr, which pytest closes after the test: a thread that logs later (a
    test SMTP server's) printed "--- Logging error ---" into the run.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if TEST_DATABASE == "postgresql":
        dsn: str = request.getfixturevalue("postgres_database")
        return dsn
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        access_token_secret=SECRET,
        database_url=database_url,
        secret_file=tmp_path / "secret",
        socket_rate_limit=50,
        socket_rate_burst=100,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(SECRET)


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[Application]:
    database = Database(settings.database_url)
    await upgrade(database)
    await database.dispose()
    application = create_app(settings, clock=clock)
    async with application.http.router.lifespan_context(application.http):
        yield application


@pytest.fixture
async def http(app: Application) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def world(tokens: TokenService, http: httpx.AsyncClient) -> World:
    return await build_world(tokens, http)


@pytest.fixture
async def live_url(app: Application) -> AsyncIterator[str]:
    """The app served by a real uvicorn on a free loopback port (lifespan run by ``app``)."""
    port = free_port()
    config = uvicorn.Config(
        app.asgi,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # as `serve` runs it: the app finds the client address itself
        **app.uvicorn_options(),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    await app.realtime.close()
    server.should_exit = True
    await task

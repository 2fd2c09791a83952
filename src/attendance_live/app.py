"""Assembles one ASGI application: HTTP API, Socket.IO, notifier, timer, dashboard.

    socketio.ASGIApp ── /socket.io/ ──► RealtimeServer (python-socketio)
          └── everything else ──► FastAPI: /api, /healthz, /readyz, /docs, dashboard

``create_app`` builds it all from settings; nothing starts until the ASGI
lifespan does (the auto-end timer) and everything is stopped on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import socketio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from attendance_live import __version__
from attendance_live.api import courses, health, sessions
from attendance_live.api.errors import install_error_handlers
from attendance_live.auth.tokens import TokenService
from attendance_live.config import Settings
from attendance_live.context import AppContext
from attendance_live.db.engine import Database
from attendance_live.realtime.notifier import Notifier
from attendance_live.realtime.server import RealtimeServer
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.autoend import AutoEnder
from attendance_live.service.errors import NotFound
from attendance_live.service.events import EventBus
from attendance_live.timeutil import Clock, utcnow

__all__ = ["Application", "create_app"]

log = logging.getLogger(__name__)

DASHBOARD = Path(__file__).parent / "web" / "dist"


@dataclass(slots=True)
class Application:
    """The ASGI callable plus handles on its parts (for the CLI and tests)."""

    asgi: socketio.ASGIApp
    http: FastAPI
    context: AppContext
    realtime: RealtimeServer
    notifier: Notifier
    auto_ender: AutoEnder


def create_app(settings: Settings, *, clock: Clock = utcnow, demo: bool = False) -> Application:
    database = Database(settings.database_url)
    bus = EventBus()
    service = AttendanceService(database, bus, clock=clock, default_max_minutes=settings.session_max_minutes)
    tokens = TokenService(settings.secret(), settings.jwt_algorithm)
    context = AppContext(settings, database, bus, service, tokens, demo=demo)

    realtime = RealtimeServer(settings, tokens, service)
    notifier = Notifier(realtime, service, local_only=settings.redis_url is None)
    auto_ender = AutoEnder(service, poll_seconds=settings.auto_end_poll_seconds)
    bus.subscribe(notifier.handle)
    bus.subscribe(auto_ender.on_event)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        auto_ender.start()
        log.info("attendance-live %s ready (database: %s)", __version__, database.dialect)
        try:
            yield
        finally:
            await auto_ender.stop()
            await realtime.close()
            await notifier.idle()
            await notifier.close()
            await database.dispose()

    http = FastAPI(
        title="attendance-live",
        version=__version__,
        summary="Real-time attendance sessions: courses, rosters, check-ins and live session events.",
        lifespan=lifespan,
    )
    http.state.context = context
    http.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["Authorization", "Content-Type"],
    )
    install_error_handlers(http)
    http.include_router(health.router)
    http.include_router(courses.router)
    http.include_router(sessions.router)
    _mount_dashboard(http)

    asgi = socketio.ASGIApp(realtime.sio, other_asgi_app=http, socketio_path="socket.io")
    return Application(asgi, http, context, realtime, notifier, auto_ender)


def _mount_dashboard(http: FastAPI) -> None:
    index = DASHBOARD / "index.html"
    if not index.is_file():
        log.debug("no dashboard build at %s; serving the API only", DASHBOARD)
        return
    if (DASHBOARD / "assets").is_dir():
        http.mount("/assets", StaticFiles(directory=DASHBOARD / "assets"), name="assets")

    @http.get("/{path:path}", include_in_schema=False)
    async def dashboard(path: str) -> FileResponse:
        if path.startswith(("api/", "socket.io")) or path == "api":
            raise NotFound(f"No such endpoint: /{path}; see /docs")
        candidate = (DASHBOARD / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(DASHBOARD.resolve()):
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

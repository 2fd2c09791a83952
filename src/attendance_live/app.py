"""Assembles one ASGI application: HTTP API, Socket.IO, the outbox relay, timer, dashboard.

    uvicorn ── websocket upgrades ──► transport.ws_protocol (below ASGI, Application.uvicorn_options)
       └── ASGI: transport.EngineApp ── /socket.io/ long-polling ──► RealtimeServer
                   └── everything else ──► FastAPI: /api, /healthz, /readyz, /metrics, /docs, dashboard

``create_app`` builds it all from settings; nothing starts until the ASGI
lifespan does (the auto-end timer, the Redis listeners) and everything is
stopped on shutdown. Whoever serves ``Application.asgi`` with uvicorn passes
``Application.uvicorn_options()`` to ``uvicorn.Config``, so that websockets
reach the transport's protocol class.

Course events cross nodes through the outbox (``realtime.relay``): every node
delivers the stream to its own rooms, woken by its own commits, by the other
nodes' messages on Redis (with ``REDIS_URL``) and by a poll of the database.
The transport's Redis adapter carries only the other broadcasts (check-in
codes). Without ``REDIS_URL``, everything stays in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from attendance_live import __version__
from attendance_live.api import (
    courses,
    docs,
    health,
    join,
    lti,
    managers,
    reports,
    server_config,
    sessions,
    wellknown,
)
from attendance_live.api.checkin_route import CheckInRoute
from attendance_live.api.errors import DASHBOARD_ROUTE, allowed_methods, install_error_handlers
from attendance_live.api.hardening import Hardening, http_protocol
from attendance_live.api.limits import HttpLimits, RequestLimits
from attendance_live.api.observe import Observe
from attendance_live.auth.keys import build_token_service
from attendance_live.auth.session_keys import SessionKeys
from attendance_live.config import Settings
from attendance_live.context import AppContext
from attendance_live.db.engine import Database
from attendance_live.limits import Limiter, MemoryLimiter, Rate, RedisLimiter
from attendance_live.lti.grades import Grades
from attendance_live.lti.service import LtiTool
from attendance_live.metrics import Metrics
from attendance_live.realtime.relay import Relay
from attendance_live.realtime.server import RealtimeServer
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.autoend import AutoEnder
from attendance_live.service.cache import Caches
from attendance_live.service.errors import NotFound
from attendance_live.service.events import EventBus
from attendance_live.service.reports import CourseReports
from attendance_live.term import Term
from attendance_live.timeutil import Clock, utcnow

__all__ = ["DASHBOARD", "REDIS_CHANNEL", "Application", "create_app"]

log = logging.getLogger(__name__)

DASHBOARD = Path(__file__).parent / "web" / "dist"
REDIS_CHANNEL = "attendance-live:socketio"


@dataclass(slots=True)
class Application:
    """The ASGI callable plus handles on its parts (for the CLI and tests)."""

    asgi: ASGIApp
    http: FastAPI
    context: AppContext
    realtime: RealtimeServer
    relay: Relay
    auto_ender: AutoEnder
    metrics: Metrics
    term: Term

    def uvicorn_options(self) -> dict[str, Any]:
        """Options for ``uvicorn.Config``: HTTP through the bounded protocol (header size, count
        and time, ``api/hardening.py``), websockets through the transport's protocol class."""
        settings = self.context.settings
        return {
            "http": http_protocol(
                header_timeout=settings.header_timeout_seconds,
                max_header_bytes=settings.http_max_header_bytes,
                max_headers=settings.http_max_headers,
            ),
            **self.realtime.uvicorn_options(),
        }


def create_app(settings: Settings, *, clock: Clock = utcnow, demo: bool = False) -> Application:
    metrics = Metrics()
    database = Database(
        settings.database_url,
        observe=lambda kind, seconds: metrics.db_seconds.labels(kind).observe(seconds),
    )
    bus = EventBus()
    clustered = settings.redis_url is not None
    # Limits that guard a secret (wrong check-in codes) count on every node alike.
    limiter: Limiter = RedisLimiter(settings.redis_url) if settings.redis_url is not None else MemoryLimiter()
    service = AttendanceService(
        database,
        bus,
        clock=clock,
        default_max_minutes=settings.session_max_minutes,
        caches=Caches.for_cluster() if clustered else Caches(),
        check_in_code_grace_seconds=settings.check_in_code_grace_seconds,
        kill_after_commit=settings.kill_after_commit_for_tests,
        limiter=limiter,
        code_attempts=Rate(settings.check_in_code_attempts, settings.check_in_code_window_seconds),
        join_attempts=Rate(settings.join_code_attempts, settings.join_code_window_seconds),
    )
    tokens = build_token_service(settings)
    # The server's own session tokens are accepted beside the configured key source.
    session_keys = SessionKeys(
        database,
        settings.issuer_url,
        max_ttl_seconds=settings.session_token_max_seconds,
        leeway=settings.jwt_leeway_seconds,
    )
    tokens.sessions = session_keys

    realtime = RealtimeServer(
        settings, tokens, service, metrics, redis_url=settings.redis_url, redis_channel=REDIS_CHANNEL
    )
    relay = Relay(
        realtime,
        service,
        metrics,
        redis_url=settings.redis_url,
        offsets=settings.event_offsets,
        count_interval=settings.count_update_interval_ms / 1000,
        poll_seconds=settings.outbox_poll_seconds,
        retention_seconds=settings.outbox_retention_seconds,
        recovery_window_seconds=settings.recovery_window_seconds,
    )
    realtime.stream = relay
    metrics.tasks.set_function(_task_count)
    metrics.timer_entries.set_function(realtime.timer_entries)
    metrics.timer_heap_entries.set_function(realtime.timer_heap_entries)
    auto_ender = AutoEnder(service, poll_seconds=settings.auto_end_poll_seconds)
    http_limits = HttpLimits(settings)
    bus.subscribe(auto_ender.on_event)
    term = Term(settings, service)  # webhooks, timetables, calendar feeds, absence alerts (issue 21)
    context = AppContext(
        settings,
        database,
        bus,
        service,
        tokens,
        CourseReports(database),
        session_keys,
        demo=demo,
        redis_state=relay.redis_state if clustered else None,
        check_user=http_limits.check_user if settings.http_rate_limits else None,
    )

    lti_tool = LtiTool(
        database,
        service,
        session_keys,
        public_url=settings.issuer_url,
        token_seconds=settings.session_token_max_seconds,
        clock=clock,
    )
    # Grades to the LMS after every session's end, from the outbox (retried, never blocking the end).
    grades = Grades(lti_tool, context.reports, poll_seconds=max(settings.outbox_poll_seconds, 5.0))
    lti_tool.grades = grades
    bus.subscribe(grades.on_event)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await session_keys.start()  # the first start generates the signing key
        await realtime.start()
        tokens.start()
        await relay.start()
        # Rosters left pending by a node that died between a start and its roster (issue 22).
        await service.rosters.complete_pending()
        auto_ender.start()
        grades.start()
        await term.start()
        log.info(
            "attendance-live %s ready (database: %s, fan-out: %s)",
            __version__,
            database.dialect,
            "redis" if clustered else "this process",
        )
        try:
            yield
        finally:
            await term.stop()
            await auto_ender.stop()
            await grades.stop()
            await service.rosters.close()
            # Drain: what committed reaches this node's clients before their sockets close.
            await relay.close()
            await realtime.close()
            await service.users.flush()
            await realtime.stop_fanout()
            await tokens.close()
            await limiter.close()
            await lti_tool.close()
            await database.dispose()

    http = FastAPI(
        title="attendance-live",
        version=__version__,
        summary="Real-time attendance sessions: courses, rosters, check-ins and live session events.",
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs from the package (offline, no inline script)
        redoc_url=None,
    )
    http.state.context = context
    http.state.lti = lti_tool
    http.state.term = term
    # Innermost: CORS, the request id and metrics wrap the lean check-in as they wrap the routes.
    http.add_middleware(CheckInRoute, context=context)
    # Inside CORS, so that a 429 carries the CORS headers a browser needs to read it.
    http.add_middleware(RequestLimits, limits=http_limits)
    http.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Content-Disposition"],
    )

    http.add_middleware(Observe, metrics=metrics)

    @http.get("/metrics", tags=["health"], response_class=Response)
    async def metrics_endpoint() -> Response:
        """Prometheus metrics of this node (no per-user or per-course labels)."""
        if context.redis_state is not None:
            await context.redis_state()
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    install_error_handlers(http)
    http.include_router(health.router)
    http.include_router(courses.router)
    http.include_router(managers.router)
    http.include_router(join.router)
    http.include_router(sessions.router)
    http.include_router(reports.router)
    http.include_router(server_config.router)
    http.include_router(wellknown.router)
    http.include_router(docs.router)
    http.include_router(lti.router)
    for router in term.routers:
        http.include_router(router)
    _mount_dashboard(http)

    # The dashboard talks to the OpenID Provider itself (discovery, tokens, renewals).
    connect_origins = [settings.oidc_origin] if settings.oidc_origin else []
    asgi = Hardening(
        lti.LtiFraming(realtime.asgi_app(http), database, connect_origins=connect_origins),
        max_body_bytes=settings.max_body_bytes,
        frame_ancestors=settings.frame_ancestors,
        connect_origins=connect_origins,
    )
    return Application(asgi, http, context, realtime, relay, auto_ender, metrics, term)


def _task_count() -> float:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # rendered outside the event loop
        return 0


def _mount_dashboard(http: FastAPI) -> None:
    index = DASHBOARD / "index.html"
    if not index.is_file():
        log.debug("no dashboard build at %s; serving the API only", DASHBOARD)
        return
    if (DASHBOARD / "assets").is_dir():
        http.mount("/assets", StaticFiles(directory=DASHBOARD / "assets"), name="assets")

    @http.get("/{path:path}", include_in_schema=False, name=DASHBOARD_ROUTE)
    async def dashboard(path: str, request: Request) -> FileResponse:
        if path.startswith(("api/", "socket.io")) or path == "api":
            # This catch-all answers every GET, so the router never gets to say that the
            # path exists with other methods (GET on a POST-only route): say it here.
            if allowed_methods(request):
                raise HTTPException(405)  # errors.py names the methods in Allow
            raise NotFound(f"No such endpoint: /{path}; see /docs")
        candidate = (DASHBOARD / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(DASHBOARD.resolve()):
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

"""Everything one running server holds, built once by ``app.create_app``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from attendance_live.auth.session_keys import SessionKeys
from attendance_live.auth.tokens import TokenService
from attendance_live.config import Settings
from attendance_live.db.engine import Database
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.events import EventBus
from attendance_live.service.reports import CourseReports

__all__ = ["AppContext"]


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: Database
    bus: EventBus
    service: AttendanceService
    tokens: TokenService
    reports: CourseReports
    # The server's own session tokens: mint_session_token(user, role, ttl), /.well-known/jwks.json.
    sessions: SessionKeys
    demo: bool = False
    # Reports "ok" or "down: ..." for /readyz; None when Redis is not configured.
    redis_state: Callable[[], Awaitable[str]] | None = None
    # Counts one request of a verified user, raising RateLimited past HTTP_USER_RATE_LIMIT
    # (api/limits.py); None: no per-user limit.
    check_user: Callable[[str], None] | None = None

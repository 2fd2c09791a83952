"""The term around the session (issue 21), assembled once by ``app.create_app``.

``Term`` holds the term's services and their background loops (the webhook sender, the timetable
scheduler, the absence alerts' processor), is told every committed outbox row of this node (so
deliveries and alerts follow at once; other nodes' rows are found by the loops' polls), and is
started and stopped with the app.
Its routers are mounted by ``create_app``; the routes reach it as ``request.app.state.term``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from attendance_live.api import term as term_api
from attendance_live.api import webhooks as webhooks_api
from attendance_live.config import Settings
from attendance_live.service.alerts import Alerts
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.calendar import CalendarFeeds, FeedTokens
from attendance_live.service.loops import Loop
from attendance_live.service.mail import Mailer
from attendance_live.service.outbox import OutboxRow
from attendance_live.service.timetable import Timetable
from attendance_live.service.webhooks import Webhooks

__all__ = ["Term"]


class Term:
    """The term's services, loops and routers."""

    def __init__(self, settings: Settings, service: AttendanceService) -> None:
        self.settings = settings
        self.service = service
        self.webhooks = Webhooks(
            service.database,
            service.clock,
            allowed_networks=settings.webhook_allowed_networks,
            timeout_seconds=settings.webhook_timeout_seconds,
        )
        poll = settings.webhook_poll_seconds
        self.webhook_loop = Loop("webhooks", lambda: self.webhooks.run_pass(poll), retry_seconds=poll)
        self.calendars = CalendarFeeds(service, FeedTokens(service.database, service.clock))
        self.timetable = Timetable(service)
        self.calendars.planned = self.timetable.calendar_entries
        tick = settings.timetable_poll_seconds
        self.timetable_loop = Loop("timetable", lambda: self.timetable.run_pass(tick), retry_seconds=tick)
        self.alerts = Alerts(
            service, Mailer(settings.smtp_url, settings.smtp_from), dashboard_url=settings.dashboard_url
        )
        # Alerts are looked at on the same beat as deliveries: both read the outbox after a cursor.
        self.alerts_loop = Loop("absence-alerts", self._alerts_pass, retry_seconds=poll)
        service.row_sinks.append(self._committed)

    @property
    def routers(self) -> list[APIRouter]:
        return [webhooks_api.router, term_api.router]

    def _committed(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            if self.webhooks.in_use:  # otherwise the periodic pass looks (WEBHOOK_POLL_SECONDS)
                self.webhook_loop.wake()
            # Only an end counts at once (records of running sessions do not; the poll sees the rest).
            if any(r.kind == "courseSessionEnded" for r in rows):
                self.alerts_loop.wake()

    async def _alerts_pass(self) -> float:
        await self.alerts.process()
        return self.settings.webhook_poll_seconds

    def wake_webhooks(self) -> None:
        self.webhook_loop.wake()

    def wake_timetable(self) -> None:
        self.timetable_loop.wake()

    async def start(self) -> None:
        self.webhook_loop.start()
        self.timetable_loop.start()
        self.alerts_loop.start()

    async def stop(self) -> None:
        await self.timetable_loop.stop()
        await self.alerts_loop.stop()
        await self.alerts.close()
        await self.webhook_loop.stop()
        await self.webhooks.close()

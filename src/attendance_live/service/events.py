"""Domain events and the in-process bus that carries them.

The service layer publishes an event only after its transaction commits; the
auto-end timer (and anything else in this process) subscribes; what reaches
clients goes through the outbox (``service.outbox``, ``realtime.relay``). Handlers run in order of
subscription; one failing handler is logged and does not stop the others or
the request that caused the event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from attendance_live.service.views import RecordView
from attendance_live.vocabulary import EnrollmentStatus, ManagerRole

__all__ = [
    "DomainEvent",
    "EnrollmentChanged",
    "EventBus",
    "Handler",
    "ManagerChanged",
    "RecordChanged",
    "SessionEnded",
    "SessionStarted",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionStarted:
    course_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    course_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class RecordChanged:
    course_id: str
    session_id: str
    user_id: str
    # Whether the session's studentCount (present + late) may have moved.
    count_changed: bool
    # The record as committed: stored in the outbox row, so no relay reads it back.
    record: RecordView | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class EnrollmentChanged:
    """An enrollment was added, changed or removed (``status`` ``removed``).

    ``requested`` marks a student's own request through a join code: the
    course's managers are told (``enrollmentRequested``), with ``name`` and
    ``email`` to show.
    """

    course_id: str
    user_id: str
    status: EnrollmentStatus | Literal["removed"]
    requested: bool = field(default=False, compare=False)
    name: str | None = field(default=None, compare=False)
    email: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ManagerChanged:
    """A course's co-manager was added, changed role or removed (``role`` ``removed``).

    Their sockets' rooms follow (the course's, its managers' and its rosters'), as an
    enrollment change moves a student's.
    """

    course_id: str
    user_id: str
    role: ManagerRole | Literal["removed"]


DomainEvent = SessionStarted | SessionEnded | RecordChanged | EnrollmentChanged | ManagerChanged
Handler = Callable[[DomainEvent], Awaitable[None]]


class EventBus:
    """Publish/subscribe within one process."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    async def publish(self, event: DomainEvent) -> None:
        for handler in list(self._handlers):
            try:
                await handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)

"""The seam between the outbox relay and connection state recovery.

Every committed domain event has a position in one stream (``outbox.id``:
gap-free, in commit order). Each node's relay delivers the stream to its local
rooms in position order; course events (``courseSessionStarted``,
``courseSessionEnded``, ``activeSessionsData`` sent to a course room) carry
their position, as a decimal string, as their last argument: the client's
offset. Recovery replays a client's missed course events from the stream and
joins it to its rooms at a position the relay has reached, so that nothing is
missed and nothing is sent twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, Protocol

__all__ = ["CourseEvent", "CourseStream", "parse_offset"]


class CourseEvent(NamedTuple):
    """A stored course event, as a client of the course's room receives it."""

    position: int
    course_id: str
    event: str  # the Socket.IO event name
    payload: dict[str, Any]


class CourseStream(Protocol):
    @property
    def position(self) -> int:
        """The last position this node has delivered to its local rooms.

        It advances in the same synchronous step as the delivery (never
        across an ``await``), so a socket that joins a room while ``position``
        is ``p`` receives live exactly the events after ``p``.
        """
        ...

    async def read_course_events(
        self, courses: Collection[str], after: int, upto: int
    ) -> Sequence[CourseEvent] | None:
        """The course events of ``courses`` with ``after < position <= upto``, in order.

        None when some of them may be gone (pruned, or ``after`` is not a
        position of this database): recovery then refuses, never partial.
        """
        ...


def parse_offset(value: object) -> int | None:
    """A client's offset as a stream position; None when it is not one of ours."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)

"""Test helpers: the secret and tokens, a settable clock, a Socket.IO event recorder, a world of users."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import socketio

from attendance_live.auth.tokens import Role, TokenService
from attendance_live.timeutil import truncate_ms, utcnow

SECRET = "test-secret-" + "x" * 40

SERVER_EVENTS = (
    "courseSessionStarted",
    "courseSessionEnded",
    "activeSessionsData",
    "activeSessionsResponse",
    "activeSessionsError",
    "sessionRosterData",
    "attendanceUpdated",
    "myAttendanceUpdated",
    "checkInCode",
    "tokenExpired",
    "tokenRefreshed",
    "enrollmentChanged",
    "enrollmentRequested",
    "absenceAlert",
)


def token(user_id: str, role: Role = "student", name: str | None = None) -> str:
    """A token for ``user_id`` signed with the test secret, valid for an hour."""
    return TokenService(SECRET).mint(user_id, name=name or user_id, role=role, ttl_seconds=3600)


def bearer(user_id: str, role: Role = "student") -> dict[str, str]:
    """The ``Authorization`` header of a request made as ``user_id``."""
    return {"Authorization": f"Bearer {token(user_id, role)}"}


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = truncate_ms(self.now + timedelta(**delta))


class Recorder:
    """A python-socketio client that records every server event in order."""

    def __init__(self, name: str = "client") -> None:
        self.name = name
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        # Parallel to ``events``: the arguments after the payload (a course event's offset).
        self.extra: list[tuple[Any, ...]] = []
        self._cursor: dict[str, int] = {}
        self._changed = asyncio.Condition()
        for event in SERVER_EVENTS:
            self.client.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        async def record(data: Any = None, *extra: Any) -> None:
            async with self._changed:
                self.events.append((event, data))
                self.extra.append(extra)
                self._changed.notify_all()

        return record

    async def connect(self, url: str, token: str | None, *, transports: list[str] | None = None) -> None:
        auth = {"token": token} if token is not None else {}
        await self.client.connect(url, auth=auth, transports=transports or ["websocket"], wait_timeout=5)

    async def emit(self, event: str, *data: Any) -> None:
        await self.client.emit(event, data[0] if len(data) == 1 else data if data else None)

    async def call(self, event: str, data: Any, timeout: float = 5) -> Any:
        return await self.client.call(event, data, timeout=timeout)

    async def next(self, event: str, timeout: float = 5.0) -> Any:
        """The next ``event`` not yet returned by ``next``; fails after ``timeout``."""
        start = self._cursor.get(event, 0)

        def found() -> int | None:
            seen = 0
            for index, (name, _) in enumerate(self.events):
                if name == event:
                    if seen >= start:
                        return index
                    seen += 1
            return None

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"{self.name}: no {event} within {timeout}s; got {[n for n, _ in self.events]}"
                ) from None
        self._cursor[event] = start + 1
        index = found()
        assert index is not None
        return self.events[index][1]

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def offsets(self, *events: str) -> list[int]:
        """The offsets (last argument) of the recorded ``events``, in order; each must carry exactly one."""
        found = []
        for (name, _), extra in zip(self.events, self.extra, strict=True):
            if name in events:
                assert len(extra) == 1, (name, extra)
                assert isinstance(extra[0], str), (name, extra)
                assert extra[0].isdigit(), (name, extra)
                found.append(int(extra[0]))
        return found

    def count(self, event: str) -> int:
        return sum(1 for name, _ in self.events if name == event)

    async def barrier(self, course_id: str) -> None:
        """A round trip through the server: events sent to us before it have arrived."""
        await self.call("checkActiveSessions", {"course_id": course_id})

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()


@dataclass
class User:
    id: str
    name: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """A course with a teacher and students in every enrollment state, plus outsiders."""

    tokens: TokenService
    http: httpx.AsyncClient
    course_id: str = "cs101"
    users: dict[str, User] = field(default_factory=dict)

    def user(self, user_id: str, name: str, role: Role = "student", ttl: int = 3600) -> User:
        user = User(user_id, name, role, self.tokens.mint(user_id, name=name, role=role, ttl_seconds=ttl))
        self.users[user_id] = user
        return user

    @property
    def teacher(self) -> User:
        return self.users["teacher"]

    @property
    def admin(self) -> User:
        return self.users["admin"]

    def students(self, *ids: str) -> Iterable[User]:
        return [self.users[i] for i in ids]

    async def start(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/courses/{self.course_id}/sessions", json=body, headers=self.teacher.headers
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def check_in(self, user_id: str, session_id: str) -> httpx.Response:
        return await self.http.post(
            f"/api/sessions/{session_id}/check-in", headers=self.users[user_id].headers
        )

    async def check_in_code(self, session_id: str) -> dict[str, Any]:
        """``GET /api/sessions/{id}/check-in-code`` as the teacher (it must succeed)."""
        url = f"/api/sessions/{session_id}/check-in-code"
        response = await self.http.get(url, headers=self.teacher.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def end(self, session_id: str) -> httpx.Response:
        return await self.http.post(f"/api/sessions/{session_id}/end", headers=self.teacher.headers)


async def build_world(tokens: TokenService, http: httpx.AsyncClient) -> World:
    """teacher; admin; students s1..s3 approved, pending, rejected; outsider; other teacher."""
    world = World(tokens, http)
    world.user("teacher", "Grace Hopper", "teacher")
    world.user("admin", "Ada Admin", "admin")
    world.user("other-teacher", "Alan Other", "teacher")
    for sid, name in (("s1", "Alice"), ("s2", "Bilal"), ("s3", "Chloe")):
        world.user(sid, name)
    world.user("pending", "Pat Pending")
    world.user("rejected", "Rex Rejected")
    world.user("outsider", "Olga Outsider")
    world.user("other-student", "Oscar Other")
    response = await http.post(
        "/api/courses",
        json={"id": world.course_id, "code": "CS101", "title": "Computing"},
        headers=world.teacher.headers,
    )
    assert response.status_code == 201, response.text
    for uid, status in (
        ("s1", "approved"),
        ("s2", "approved"),
        ("s3", "approved"),
        ("pending", "pending"),
        ("rejected", "rejected"),
    ):
        response = await http.put(
            f"/api/courses/{world.course_id}/enrollments/{uid}",
            json={"status": status, "name": world.users[uid].name},
            headers=world.teacher.headers,
        )
        assert response.status_code in (200, 201), response.text
    # another course, so "student of another course" exists
    response = await http.post(
        "/api/courses",
        json={"id": "other", "code": "OT1", "title": "Other"},
        headers=world.users["other-teacher"].headers,
    )
    assert response.status_code == 201, response.text
    response = await http.put(
        "/api/courses/other/enrollments/other-student",
        json={"status": "approved"},
        headers=world.users["other-teacher"].headers,
    )
    assert response.status_code == 201, response.text
    return world


_Entry = TypeVar("_Entry")


async def wait_for_entry(
    changed: asyncio.Condition,
    seen: Sequence[_Entry],
    predicate: Callable[[_Entry], bool],
    *,
    since: int,
    timeout: float,
    failure: Callable[[], str],
) -> _Entry:
    """The first of ``seen[since:]`` satisfying ``predicate``, awaited on ``changed`` (which the
    receiving side notifies after each append); an AssertionError with ``failure()`` after ``timeout``."""

    def find() -> _Entry | None:
        return next((entry for entry in seen[since:] if predicate(entry)), None)

    async with changed:
        try:
            await asyncio.wait_for(changed.wait_for(lambda: find() is not None), timeout)
        except TimeoutError:
            raise AssertionError(f"{failure()} (nothing within {timeout} s)") from None
    found = find()
    assert found is not None
    return found

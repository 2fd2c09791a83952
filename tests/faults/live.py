"""What the fault tests talk to the nodes with: a seed-hook-like Socket.IO client and the HTTP API.

``LiveClient`` behaves like the seed's React hook: it reconnects by itself and
(re)subscribes to its course on every ``connect``, so after any reconnection
the next ``activeSessionsData`` is a fresh snapshot from the server. It
records everything it sees, in order, so tests can assert exactly-once and
ordering, and wait on conditions rather than sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import socketio

from tests.helpers import SERVER_EVENTS, bearer, token, wait_for_entry

COURSE = "demo-course"
TEACHER = "demo-teacher"
STUDENTS = tuple(f"demo-student-{n}" for n in range(1, 6))  # approved in the demo course
SNAPSHOTS = ("activeSessionsData", "activeSessionsResponse")


TEACHER_HEADERS = bearer(TEACHER, "teacher")


@dataclass(frozen=True, slots=True)
class Seen:
    seq: int
    name: str
    data: Any
    at: float
    # A course event's offset (its last argument) as an int; None for any other event.
    offset: int | None = None


class LiveClient:
    """A python-socketio client that re-subscribes to ``course_id`` on every connect."""

    def __init__(
        self,
        name: str,
        user_id: str = "demo-student-1",
        *,
        course_id: str = COURSE,
        reconnection: bool = True,
    ) -> None:
        self.name = name
        self.course_id = course_id
        self.token = token(user_id)
        self._responses: list[aiohttp.ClientResponse] = []
        self.sio = socketio.AsyncClient(
            reconnection=reconnection,
            reconnection_delay=0.25,
            reconnection_delay_max=1.0,
            randomization_factor=0.2,
            http_session=self._http_session,  # a factory: Engine.IO makes (and closes) each session
        )
        self.seen: list[Seen] = []
        self._changed = asyncio.Condition()
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect_error", self._on_connect_error)
        for event in SERVER_EVENTS:
            self.sio.on(event, self._recorder(event))

    # --- HTTP plumbing ---

    def _http_session(self) -> aiohttp.ClientSession:
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._track_response)
        return aiohttp.ClientSession(trace_configs=[trace])

    async def _track_response(self, _session: object, _context: object, params: Any) -> None:
        # python-engineio's polling loops drop a non-2xx response (such as the 400
        # "Invalid session" after nginx moved the client to another node) without
        # releasing it, and aiohttp then warns about the connection whenever the
        # garbage collector gets to it. Keep every response until ``close()``
        # releases those still open.
        self._responses = [r for r in self._responses if not r.closed]
        self._responses.append(params.response)

    # --- recording ---

    async def _record(self, name: str, data: Any = None, offset: int | None = None) -> None:
        async with self._changed:
            self.seen.append(Seen(len(self.seen), name, data, time.monotonic(), offset))
            self._changed.notify_all()

    def _recorder(self, event: str) -> Callable[..., Awaitable[None]]:
        async def record(data: Any = None, *extra: Any) -> None:
            # Course events to a room carry their offset (a decimal string) as one more argument.
            offset = (
                int(extra[0])
                if len(extra) == 1 and isinstance(extra[0], str) and extra[0].isdigit()
                else None
            )
            if extra and offset is None:
                data = {"unexpected arguments": [data, *extra]}  # fails any assertion on the payload
            await self._record(event, data, offset)

        return record

    async def _on_connect(self) -> None:
        await self._record("connect")
        # As the seed's hook does: (re)subscribe on every connect.
        await self.sio.emit("subscribeToCourse", {"course_id": self.course_id})

    async def _on_disconnect(self, reason: Any = None) -> None:
        await self._record("disconnect", reason)

    async def _on_connect_error(self, data: Any = None) -> None:
        await self._record("connect_error", data)

    # --- connecting ---

    async def connect(self, url: str, transports: Sequence[str] = ("websocket",)) -> Seen:
        """Connect and wait for the subscription's first snapshot (returned)."""
        mark = self.mark()
        await self.sio.connect(url, auth={"token": self.token}, transports=list(transports), wait_timeout=10)
        return await self.next("activeSessionsData", since=mark, what="the snapshot after subscribing")

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    @property
    def transport(self) -> str | None:
        return self.sio.transport()  # type: ignore[no-any-return]

    async def close(self) -> None:
        with suppress(TimeoutError, socketio.exceptions.SocketIOError):
            await asyncio.wait_for(self.sio.shutdown(), 10)
        for response in self._responses:
            if not response.closed:
                response.close()
        self._responses.clear()

    # --- reading what was seen ---

    def mark(self) -> int:
        return len(self.seen)

    def since(self, mark: int = 0, names: Sequence[str] | None = None) -> list[Seen]:
        return [s for s in self.seen[mark:] if names is None or s.name in names]

    def names(self, mark: int = 0, *, ignore: Sequence[str] = ()) -> list[str]:
        return [s.name for s in self.seen[mark:] if s.name not in ignore]

    def count(self, name: str, mark: int = 0) -> int:
        return sum(1 for s in self.seen[mark:] if s.name == name)

    @property
    def snapshot(self) -> dict[str, Any] | None:
        """The latest ``activeSessionsData`` (what the seed's hook shows)."""
        for seen in reversed(self.seen):
            if seen.name == "activeSessionsData":
                data: dict[str, Any] = seen.data
                return data
        return None

    async def wait(self, predicate: Callable[[Seen], bool], *, since: int, timeout: float, what: str) -> Seen:
        """The first entry from ``since`` on that satisfies ``predicate``; fails after ``timeout``."""
        return await wait_for_entry(
            self._changed,
            self.seen,
            predicate,
            since=since,
            timeout=timeout,
            failure=lambda: f"{self.name}: {what}: saw {self.describe(since)}",
        )

    async def next(
        self,
        name: str,
        *,
        since: int,
        where: Callable[[Any], bool] | None = None,
        timeout: float = 10.0,
        what: str | None = None,
    ) -> Seen:
        return await self.wait(
            lambda s: s.name == name and (where is None or where(s.data)),
            since=since,
            timeout=timeout,
            what=what or name,
        )

    async def quiet(self, seconds: float = 1.0, *, limit: float = 10.0) -> None:
        """Wait until nothing new has arrived for ``seconds`` (at most ``limit`` in all).

        Only absence needs this: "nothing twice" can be checked in no other way
        than by listening a while longer.
        """
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            last = self.seen[-1].at if self.seen else 0.0
            wait = last + seconds - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, deadline - time.monotonic()))
        raise AssertionError(f"{self.name}: events kept arriving for {limit} s: {self.describe(0)}")

    def describe(self, since: int = 0) -> str:
        parts = []
        for s in self.seen[since:]:
            if s.name in SNAPSHOTS and isinstance(s.data, dict):
                counts = [a.get("studentCount") for a in s.data.get("activeSessions", [])]
                parts.append(f"{s.name}{counts}")
            else:
                parts.append(s.name)
        return ", ".join(parts) or "nothing"


def active_counts(data: dict[str, Any]) -> list[int]:
    return [item["studentCount"] for item in data["activeSessions"]]


def counts_are(expected: list[int]) -> Callable[[Any], bool]:
    """A ``where`` for ``activeSessionsData``: the active sessions' studentCounts are ``expected``."""
    return lambda data: active_counts(data) == expected


# --- the HTTP API ---


async def start_session(http: httpx.AsyncClient, topic: str = "fault test") -> dict[str, Any]:
    response = await http.post(
        f"/api/courses/{COURSE}/sessions", json={"topic": topic}, headers=TEACHER_HEADERS
    )
    assert response.status_code == 201, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def check_in(http: httpx.AsyncClient, session_id: str, student: str) -> dict[str, Any]:
    response = await http.post(f"/api/sessions/{session_id}/check-in", headers=bearer(student))
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def end_session(http: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    response = await http.post(f"/api/sessions/{session_id}/end", headers=TEACHER_HEADERS)
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def get_session(http: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/sessions/{session_id}", headers=TEACHER_HEADERS)
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def readiness(http: httpx.AsyncClient, base_url: str) -> tuple[int, dict[str, Any]]:
    try:
        response = await http.get(f"{base_url}/readyz", timeout=5)
    except httpx.TransportError as exc:
        return 0, {"error": repr(exc)}
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"body": response.text[:200]}


async def poll(
    probe: Callable[[], Awaitable[bool]], *, timeout: float, what: str, interval: float = 0.2
) -> float:
    """Call ``probe`` until it returns True; fail after ``timeout``. Returns the seconds it took."""
    started = time.monotonic()
    while True:
        if await probe():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def api(*base_urls: str, timeout: float = 10.0) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per node (``async with api(a.url, b.url) as (via_a, via_b)``)."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=timeout))
            for url in base_urls
        ]
        yield clients

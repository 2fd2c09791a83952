"""Domain events: once, after commit, never for a rolled-back change; and the races."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.service.events import (
    DomainEvent,
    EnrollmentChanged,
    RecordChanged,
    SessionEnded,
    SessionStarted,
)
from tests.helpers import World


@pytest.fixture
def published(app: Application) -> list[DomainEvent]:
    seen: list[DomainEvent] = []

    async def record(event: DomainEvent) -> None:
        seen.append(event)

    app.context.bus.subscribe(record)
    return seen


async def test_events_are_published_once_after_commit(
    world: World, app: Application, published: list[DomainEvent]
) -> None:
    committed: list[bool] = []

    async def committed_when_published(event: DomainEvent) -> None:
        # A fresh read transaction sees the change: the publish came after commit.
        if isinstance(event, SessionStarted):
            snapshot = await app.context.service.active_sessions_snapshot(event.course_id)
            committed.append(any(s.session_id == event.session_id for s in snapshot.sessions))

    app.context.bus.subscribe(committed_when_published)
    session = await world.start()
    await world.check_in("s1", session["id"])
    await world.check_in("s1", session["id"])  # a repeat changes nothing: no event
    await world.end(session["id"])
    await world.end(session["id"])  # 409: no event
    assert published == [
        SessionStarted("cs101", session["id"]),
        RecordChanged("cs101", session["id"], "s1", True),
        SessionEnded("cs101", session["id"]),
    ]
    assert committed == [True]


async def test_no_event_for_a_rolled_back_change(
    world: World,
    http: httpx.AsyncClient,
    app: Application,
    published: list[DomainEvent],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = app.context.service
    original = service._statistics

    async def fail(*args: object, **kwargs: object) -> object:
        raise RuntimeError("injected failure after the update, before commit")

    session = await world.start()
    published.clear()
    monkeypatch.setattr(service, "_statistics", fail)
    # as a real server does: the client gets the 500, the exception stays in the log
    transport = httpx.ASGITransport(app=app.asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(f"/api/sessions/{session['id']}/end", headers=world.teacher.headers)
    assert response.status_code == 500
    assert "reference" in response.json()["detail"]
    monkeypatch.setattr(service, "_statistics", original)
    assert published == []
    # nothing half-written: still active, and it can be ended for real
    current = await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)
    assert current.json()["status"] == "active"
    assert (await world.end(session["id"])).status_code == 200
    assert published == [SessionEnded("cs101", session["id"])]


async def test_a_failing_subscriber_does_not_fail_the_request(
    world: World, app: Application, published: list[DomainEvent]
) -> None:
    async def broken(event: DomainEvent) -> None:
        raise RuntimeError("subscriber bug")

    app.context.bus.subscribe(broken)
    session = await world.start()
    assert session["status"] == "active"
    assert published == [SessionStarted("cs101", session["id"])]


async def test_two_ends_at_once_give_one_200_and_one_409(world: World, published: list[DomainEvent]) -> None:
    session = await world.start()
    first, second = await asyncio.gather(world.end(session["id"]), world.end(session["id"]))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert published.count(SessionEnded("cs101", session["id"])) == 1


async def test_twenty_concurrent_check_ins_give_one_record(
    world: World, http: httpx.AsyncClient, published: list[DomainEvent]
) -> None:
    session = await world.start()
    responses = await asyncio.gather(*(world.check_in("s1", session["id"]) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["marked_at"] for r in responses}) == 1
    body = (await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)).json()
    assert [r["user_id"] for r in body["records"]].count("s1") == 1
    assert body["statistics"]["present"] == 1
    assert sum(1 for e in published if isinstance(e, RecordChanged)) == 1


async def test_check_in_racing_end_is_counted_or_refused_never_lost(
    world: World, http: httpx.AsyncClient
) -> None:
    session = await world.start()
    results = await asyncio.gather(
        world.check_in("s1", session["id"]), world.end(session["id"]), world.check_in("s2", session["id"])
    )
    ended = results[1].json()
    accepted = sum(1 for r in (results[0], results[2]) if r.status_code == 200)
    assert {results[0].status_code, results[2].status_code} <= {200, 409}
    # every check-in that was answered 200 is in the final statistics
    assert ended["final_statistics"]["present"] == accepted


async def test_enrollment_change_is_an_event(
    world: World, http: httpx.AsyncClient, published: list[DomainEvent]
) -> None:
    await http.put(
        "/api/courses/cs101/enrollments/s1", json={"status": "rejected"}, headers=world.teacher.headers
    )
    assert published == [EnrollmentChanged("cs101", "s1", "rejected")]

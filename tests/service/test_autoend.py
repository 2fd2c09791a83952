"""The auto-end timer: ends each expired session exactly once, and stops cleanly."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.service.autoend import AutoEnder
from attendance_live.service.events import DomainEvent, SessionEnded
from tests.helpers import FakeClock, World


@pytest.fixture
def ended(app: Application) -> list[DomainEvent]:
    """Every SessionEnded the bus publishes, in order."""
    seen: list[DomainEvent] = []

    async def record(event: DomainEvent) -> None:
        if isinstance(event, SessionEnded):
            seen.append(event)

    app.context.bus.subscribe(record)
    return seen


async def test_expired_session_ends_by_itself_as_system(
    world: World, http: httpx.AsyncClient, app: Application, clock: FakeClock, ended: list[DomainEvent]
) -> None:
    short = await world.start(max_duration_minutes=30, late_after_minutes=5)
    long = await world.start(max_duration_minutes=90)
    await world.check_in("s1", short["id"])

    clock.advance(minutes=29)
    assert await app.auto_ender.run_once() > 0
    assert ended == []

    clock.advance(minutes=2)
    await app.auto_ender.run_once()
    body = (await http.get(f"/api/sessions/{short['id']}", headers=world.teacher.headers)).json()
    assert body["status"] == "ended"
    assert body["ended_by"] == "system"
    assert body["final_statistics"]["present"] == 1
    assert body["final_statistics"]["total"] == 3
    still = (await http.get(f"/api/sessions/{long['id']}", headers=world.teacher.headers)).json()
    assert still["status"] == "active"
    assert ended == [SessionEnded("cs101", short["id"])]


async def test_every_node_running_the_timer_ends_once(
    world: World, app: Application, clock: FakeClock, ended: list[DomainEvent]
) -> None:
    session = await world.start(max_duration_minutes=1, late_after_minutes=0)
    clock.advance(minutes=2)
    # three "nodes" (timers over the same service and database) race
    timers = [AutoEnder(app.context.service) for _ in range(3)]
    await asyncio.gather(*(t.run_once() for t in timers))
    assert ended == [SessionEnded("cs101", session["id"])]


async def test_background_timer_wakes_and_stops_cleanly(
    world: World, app: Application, clock: FakeClock
) -> None:
    done = asyncio.Event()

    async def record(event: DomainEvent) -> None:
        if isinstance(event, SessionEnded):
            done.set()

    app.context.bus.subscribe(record)
    await world.start(max_duration_minutes=1, late_after_minutes=0)
    clock.advance(minutes=5)
    app.auto_ender.wake()
    await asyncio.wait_for(done.wait(), 5)
    await app.auto_ender.stop()
    assert not app.auto_ender.running

"""Two nodes on one PostgreSQL database: each planned session starts exactly once, and each outbox
row becomes exactly one webhook delivery, however the nodes race."""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from attendance_live.app import Application, create_app
from attendance_live.config import Settings
from attendance_live.db.models import AttendanceSession, OutboxEvent
from attendance_live.db.term_models import AbsenceAlert, PlannedSession, WebhookDelivery
from tests.helpers import FakeClock, World
from tests.webhook_receiver import Receiver


@pytest.fixture
def database_url(postgres_database: str) -> str:
    return postgres_database  # PostgreSQL whatever ATTENDANCE_TEST_DATABASE says


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allowed_networks": (ipaddress.ip_network("127.0.0.0/8"),)})


@pytest.fixture
async def second(app: Application, settings: Settings, clock: FakeClock) -> AsyncIterator[Application]:
    node = create_app(settings, clock=clock)
    async with node.http.router.lifespan_context(node.http):
        yield node


async def test_two_nodes_start_each_planned_session_once(
    app: Application, second: Application, http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    starts_at = clock.now.replace(microsecond=0) + timedelta(minutes=5)
    ids = []
    for n in range(8):
        response = await http.post(
            "/api/courses/cs101/planned-sessions",
            json={"starts_at": starts_at.isoformat(), "duration_minutes": 45, "topic": f"plan {n}"},
            headers=world.teacher.headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    clock.now = starts_at
    await asyncio.gather(
        app.term.timetable.run_due(),
        second.term.timetable.run_due(),
        app.term.timetable_loop.settled(),
        second.term.timetable_loop.settled(),
    )
    async with app.context.database.read() as db:
        sessions = Counter((await db.execute(select(AttendanceSession.id))).scalars())
        started = Counter(
            (
                await db.execute(
                    select(OutboxEvent.payload).where(OutboxEvent.kind == "courseSessionStarted")
                )
            ).scalars()
        )
        statuses = set((await db.execute(select(PlannedSession.status))).scalars())
    assert sorted(sessions) == sorted(ids)
    assert set(sessions.values()) == {1}
    assert len(started) == 8
    assert set(started.values()) == {1}
    assert statuses == {"started"}


async def test_two_nodes_make_each_delivery_once(
    app: Application, second: Application, http: httpx.AsyncClient, world: World
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        response = await http.post(
            "/api/webhooks",
            json={"url": receiver.url, "event_types": ["session.started", "session.ended"]},
            headers=world.admin.headers,
        )
        assert response.status_code == 201, response.text
        receiver.secret = response.json()["secret"]
        for _ in range(5):
            session = await world.start()
            await asyncio.gather(app.term.webhooks.enqueue(), second.term.webhooks.enqueue())
            assert (await world.end(session["id"])).status_code == 200
        await asyncio.gather(app.term.webhooks.enqueue(), second.term.webhooks.enqueue())
        got = await receiver.wait_count(10)
    finally:
        await receiver.stop()
    assert len({r.webhook_id for r in got}) == 10
    assert [r.body["type"] for r in got] == ["session.started", "session.ended"] * 5
    async with app.context.database.read() as db:
        count = (await db.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one()
    assert count == 10


async def test_two_nodes_fire_each_absence_alert_once(
    app: Application, second: Application, http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    response = await http.put(
        "/api/courses/cs101/absence-rules",
        json={"rules": [{"kind": "absences", "count": 1}, {"kind": "streak", "count": 2}]},
        headers=world.teacher.headers,
    )
    assert response.status_code == 200, response.text
    for _ in range(3):
        clock.advance(days=1)
        session = await world.start()
        assert (await world.end(session["id"])).status_code == 200
        await asyncio.gather(app.term.alerts.process(), second.term.alerts.process())
    async with app.context.database.read() as db:
        fired = Counter((r.user_id, r.rule_id) for r in (await db.execute(select(AbsenceAlert))).scalars())
        outbox = (
            await db.execute(select(func.count()).where(OutboxEvent.kind == "absenceAlert"))
        ).scalar_one()
    # s1, s2, s3: absent every time; each crosses each rule once.
    assert len(fired) == 6
    assert set(fired.values()) == {1}
    assert outbox == 6

"""Signed webhooks: registration (administrators, SSRF), signed deliveries from the outbox, order,
retries while the receiver is down, resend, and no loss across a restart."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from attendance_live.app import Application, create_app
from attendance_live.config import Settings
from attendance_live.db.engine import Database
from attendance_live.db.migrate import upgrade
from attendance_live.db.term_models import WebhookDelivery
from attendance_live.service.webhook_targets import GuardedResolver
from attendance_live.service.webhooks import MAX_ATTEMPTS, RETRY_SCHEDULE
from tests.helpers import FakeClock, World, bearer
from tests.webhook_receiver import Receiver

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The receiver listens on loopback: the allow-list lets the tests register it.
    return settings.model_copy(update={"webhook_allowed_networks": LOOPBACK, "webhook_timeout_seconds": 2.0})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def register(http: httpx.AsyncClient, world: World, receiver: Receiver, **body: Any) -> dict[str, Any]:
    body.setdefault("event_types", ["session.started", "session.ended", "record.changed"])
    response = await http.post(
        "/api/webhooks", json={"url": receiver.url, **body}, headers=world.admin.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secret = created["secret"]
    return created


async def deliveries(http: httpx.AsyncClient, world: World, **params: str) -> list[dict[str, Any]]:
    response = await http.get("/api/webhooks/deliveries", params=params, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_only_administrators_register_and_the_secret_is_shown_once(
    http: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    body = {"url": receiver.url, "event_types": ["session.started"]}
    refused = await http.post("/api/webhooks", json=body, headers=world.teacher.headers)
    assert refused.status_code == 403
    assert "administrators" in refused.json()["detail"]
    created = await register(http, world, receiver, event_types=["session.started"])
    assert created["secret"].startswith("whsec_")
    assert created["course_id"] is None
    listed = (await http.get("/api/webhooks", headers=world.admin.headers)).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    bad = await http.post(
        "/api/webhooks", json={**body, "event_types": ["session.exploded"]}, headers=world.admin.headers
    )
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://192.168.0.10/hook",
        "http://localhost:9/hook",
    ],
)
async def test_private_and_loopback_targets_are_refused_unless_allowed(
    http: httpx.AsyncClient, world: World, url: str
) -> None:
    response = await http.post(
        "/api/webhooks", json={"url": url, "event_types": ["session.started"]}, headers=world.admin.headers
    )
    if url.startswith("http://127.") or url.startswith("http://localhost"):
        assert response.status_code == 201, response.text  # 127.0.0.0/8 is on this test's allow-list
        return
    assert response.status_code == 422, response.text
    assert "WEBHOOK_ALLOWED_NETWORKS" in response.json()["detail"]


async def test_without_an_allow_list_loopback_is_refused(settings: Settings, clock: FakeClock) -> None:
    database = Database(settings.database_url)
    await upgrade(database)
    await database.dispose()
    application = create_app(settings.model_copy(update={"webhook_allowed_networks": ()}), clock=clock)
    async with application.http.router.lifespan_context(application.http):
        transport = httpx.ASGITransport(app=application.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post(
                "/api/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "event_types": ["session.started"]},
                headers=bearer("root", "admin"),
            )
    assert response.status_code == 422
    assert "loopback, private or reserved" in response.json()["detail"]


async def test_session_events_arrive_signed_and_in_order(
    app: Application, http: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    await register(http, world, receiver)
    session = await world.start(topic="Recursion")
    assert (await world.check_in("s1", session["id"])).status_code == 200
    assert (await world.end(session["id"])).status_code == 200
    got = await receiver.wait_count(3)
    assert all(r.verified for r in got)
    assert [r.body["type"] for r in got] == ["session.started", "record.changed", "session.ended"]
    started, record, ended = (r.body["data"] for r in got)
    assert started["course_id"] == "cs101"
    assert started["session_id"] == session["id"]
    assert started["teacher_name"] == "Grace Hopper"
    assert record == {
        "course_id": "cs101",
        "session_id": session["id"],
        "user_id": "s1",
        "name": "Alice",
        "status": "present",
        "marked_at": record["marked_at"],
        "marked_by": "s1",
        "remarks": None,
    }
    assert ended["final_statistics"]["present"] == 1
    assert len({r.webhook_id for r in got}) == 3
    await app.term.webhook_loop.settled()
    listed = await deliveries(http, world)
    assert {(d["status"], d["attempts"]) for d in listed} == {("delivered", 1)}


async def test_a_course_endpoint_gets_only_its_course(
    http: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    await register(http, world, receiver, course_id="other", event_types=["session.started"])
    await world.start()  # cs101: not for this endpoint
    response = await http.post(
        "/api/courses/other/sessions", json={}, headers=world.users["other-teacher"].headers
    )
    assert response.status_code == 201
    got = await receiver.wait_count(1)
    assert got[0].body["data"]["course_id"] == "other"
    assert [d["course_id"] for d in await deliveries(http, world)] == ["other"]


async def test_a_receiver_that_is_down_gets_every_delivery_afterwards_in_order_once_each(
    app: Application, http: httpx.AsyncClient, world: World, receiver: Receiver, clock: FakeClock
) -> None:
    await register(http, world, receiver)
    receiver.down = True
    first = await world.start(topic="one")
    assert (await world.end(first["id"])).status_code == 200
    second = await world.start(topic="two")
    await app.term.webhook_loop.settled()
    # The line waits behind its first delivery: one attempt so far, the error recorded.
    listed = await deliveries(http, world)
    head = min(listed, key=lambda d: d["id"])
    assert head["status"] == "pending"
    assert head["attempts"] == 1
    assert head["last_error"] == "HTTP 503 Service Unavailable"
    assert head["last_status_code"] == 503
    assert receiver.refused == 1
    # Four more failed attempts, each after its backoff.
    for attempt in range(1, 5):
        clock.advance(seconds=RETRY_SCHEDULE[attempt - 1].total_seconds() - 1)
        await app.term.webhook_loop.settled()
        assert receiver.refused == attempt  # not due yet
        clock.advance(seconds=1)
        await app.term.webhook_loop.settled()
        assert receiver.refused == attempt + 1
    receiver.down = False
    clock.advance(seconds=RETRY_SCHEDULE[4].total_seconds())
    await app.term.webhook_loop.settled()
    got = await receiver.wait_count(3)
    assert [(r.body["type"], r.body["data"]["session_id"]) for r in got] == [
        ("session.started", first["id"]),
        ("session.ended", first["id"]),
        ("session.started", second["id"]),
    ]
    assert len({r.webhook_id for r in got}) == 3
    await app.term.webhook_loop.settled()  # the last answer recorded
    statuses = {d["id"]: (d["status"], d["attempts"]) for d in await deliveries(http, world)}
    assert sorted(statuses.values()) == [("delivered", 1), ("delivered", 1), ("delivered", 6)]


async def test_a_delivery_gives_up_after_more_than_a_day_and_the_line_moves_on(
    app: Application, http: httpx.AsyncClient, world: World, receiver: Receiver, clock: FakeClock
) -> None:
    assert sum(RETRY_SCHEDULE, timedelta()) >= timedelta(hours=24)
    await register(http, world, receiver)
    receiver.down = True
    session = await world.start()
    await app.term.webhook_loop.settled()
    for attempt in range(1, MAX_ATTEMPTS):
        clock.advance(seconds=RETRY_SCHEDULE[attempt - 1].total_seconds())
        await app.term.webhook_loop.settled()
        assert receiver.refused == attempt + 1
    failed = await deliveries(http, world, status="failed")
    assert [(d["attempts"], d["next_attempt_at"]) for d in failed] == [(MAX_ATTEMPTS, None)]
    receiver.down = False
    assert (await world.end(session["id"])).status_code == 200
    got = await receiver.wait_count(1)
    assert got[0].body["type"] == "session.ended"
    # The administrator resends the failed one: the same webhook-id and body, signed afresh.
    response = await http.post(
        f"/api/webhooks/deliveries/{failed[0]['id']}/resend", headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    got = await receiver.wait_count(2)
    assert got[1].webhook_id == failed[0]["message_id"]
    assert got[1].body == failed[0]["payload"]
    assert got[1].verified
    missing = await http.post("/api/webhooks/deliveries/999999/resend", headers=world.admin.headers)
    assert missing.status_code == 404


async def test_no_event_is_lost_across_a_restart(
    app: Application,
    http: httpx.AsyncClient,
    world: World,
    receiver: Receiver,
    settings: Settings,
    clock: FakeClock,
) -> None:
    await register(http, world, receiver, event_types=["session.started", "session.ended"])
    await app.term.stop()  # this node stops sending, as if it died after its commits
    session = await world.start()
    assert (await world.end(session["id"])).status_code == 200
    assert receiver.received == []
    restarted = create_app(settings, clock=clock)
    async with restarted.http.router.lifespan_context(restarted.http):
        got = await receiver.wait_count(2)
    assert [r.body["type"] for r in got] == ["session.started", "session.ended"]
    async with restarted.context.database.read() as db:
        rows = (await db.execute(select(WebhookDelivery.status))).scalars().all()
    assert rows == ["delivered", "delivered"]


async def test_a_receiver_that_does_not_answer_times_out_without_holding_up_any_request(
    app: Application, http: httpx.AsyncClient, world: World, receiver: Receiver, clock: FakeClock
) -> None:
    await register(http, world, receiver, event_types=["session.started", "session.ended"])
    receiver.hold = asyncio.Event()
    session = await world.start()
    await receiver.wait_held(1)  # the start's delivery is in flight, unanswered...
    assert (
        await world.end(session["id"])
    ).status_code == 200  # ...and the teacher's next request is not held up
    await app.term.webhook_loop.settled()  # the attempt gave up after WEBHOOK_TIMEOUT_SECONDS
    (head, *_) = sorted(await deliveries(http, world), key=lambda d: d["id"])
    assert head["status"] == "pending"
    assert head["attempts"] == 1
    assert head["last_error"] == "no answer within 2 s"
    assert head["last_status_code"] is None
    receiver.hold.set()
    receiver.hold = None
    clock.advance(seconds=RETRY_SCHEDULE[0].total_seconds())
    app.term.wake_webhooks()
    got = await receiver.wait_count(2)
    assert [r.body["type"] for r in got] == ["session.started", "session.ended"]


async def test_the_http_clients_resolver_drops_addresses_a_webhook_may_not_reach() -> None:
    refusing = GuardedResolver(())
    try:
        with pytest.raises(OSError, match="loopback, private or reserved addresses only"):
            await refusing.resolve("localhost", 80)
    finally:
        await refusing.close()
    allowing = GuardedResolver(LOOPBACK)
    try:
        found = await allowing.resolve("localhost", 80)
    finally:
        await allowing.close()
    assert [r["host"] for r in found] == ["127.0.0.1"]


async def test_enrollment_changes_go_to_their_endpoints(
    app: Application, http: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    await register(http, world, receiver, event_types=["enrollment.changed"])
    response = await http.put(
        "/api/courses/cs101/enrollments/s2", json={"status": "rejected"}, headers=world.teacher.headers
    )
    assert response.status_code == 200, response.text
    await world.start()  # not subscribed: no delivery
    got = await receiver.wait_count(1)
    assert got[0].body["type"] == "enrollment.changed"
    assert got[0].body["data"] == {"course_id": "cs101", "user_id": "s2", "status": "rejected"}
    await app.term.webhook_loop.settled()
    assert len(receiver.received) == 1

"""Limits (issue 23, item 4): wrong check-in codes per student and session, and HTTP requests per
user and per address. Before, 1,000 wrong codes from one student in 16 s were all answered
``code_invalid`` and the right code was accepted right after."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.config import Settings
from attendance_live.limits import MemoryLimiter, Rate, RedisLimiter
from tests.helpers import Recorder, World
from tests.infra.redis import RedisServer


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _check_in(http: httpx.AsyncClient, world: World, user: str, sid: str, code: str) -> httpx.Response:
    return await http.post(
        f"/api/sessions/{sid}/check-in", json={"code": code}, headers=world.users[user].headers
    )


async def _right_code(world: World, sid: str) -> str:
    code: str = (await world.check_in_code(sid))["code"]
    return code


def _wrong(code: str) -> str:
    return "AAAAAA" if code != "AAAAAA" else "BBBBBB"


async def test_wrong_codes_stop_at_the_limit_and_flag_the_student_on_the_roster(
    app: Application, world: World, http: httpx.AsyncClient, live_url: str
) -> None:
    clock = Ticking()
    app.context.service.limiter = MemoryLimiter(clock=clock)
    session = await world.start(check_in_mode="code")
    sid = session["id"]
    teacher = Recorder("teacher")
    await teacher.connect(live_url, world.teacher.token)
    try:
        await teacher.call("subscribeToSession", {"session_id": sid})
        right = await _right_code(world, sid)
        for _ in range(5):  # CHECK_IN_CODE_ATTEMPTS (5) wrong codes are refused as wrong
            response = await _check_in(http, world, "s1", sid, _wrong(right))
            assert response.status_code == 403
            assert response.json()["reason"] == "code_invalid"
        # The 6th, even with the right code, is 429 until the window ends.
        for code in (_wrong(right), right):
            limited = await _check_in(http, world, "s1", sid, code)
            assert limited.status_code == 429
            assert limited.json()["reason"] == "too_many_attempts"
            assert "CHECK_IN_CODE_ATTEMPTS" in limited.json()["detail"]
            assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Another student is not affected.
        assert (await _check_in(http, world, "s2", sid, right)).status_code == 200

        # The teacher sees the flag live and on the roster.
        flagged = await teacher.next("attendanceUpdated")
        assert flagged["user_id"] == "s1"
        assert flagged["status"] == "absent"
        assert flagged["code_attempts_blocked_at"] is not None
        body = (await http.get(f"/api/sessions/{sid}", headers=world.teacher.headers)).json()
        records = {r["user_id"]: r for r in body["records"]}
        assert records["s1"]["code_attempts_blocked_at"] == flagged["code_attempts_blocked_at"]
        assert records["s2"]["code_attempts_blocked_at"] is None

        # After the window, the right code is accepted; the flag stays for the teacher.
        clock.now += 61
        right = await _right_code(world, sid)
        accepted = await _check_in(http, world, "s1", sid, right)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "present"
        checked_in = await teacher.next("attendanceUpdated")
        while checked_in["user_id"] != "s1":
            checked_in = await teacher.next("attendanceUpdated")
        assert checked_in["code_attempts_blocked_at"] == flagged["code_attempts_blocked_at"]
    finally:
        await teacher.close()


async def test_wrong_codes_count_per_session(app: Application, world: World, http: httpx.AsyncClient) -> None:
    first = await world.start(check_in_mode="code")
    for _ in range(6):
        await _check_in(http, world, "s1", first["id"], "AAAAAA")
    assert (await _check_in(http, world, "s1", first["id"], "AAAAAA")).status_code == 429
    assert (await world.end(first["id"])).status_code == 200
    second = await world.start(check_in_mode="code")
    right = await _right_code(world, second["id"])
    assert (await _check_in(http, world, "s1", second["id"], right)).status_code == 200


async def test_the_count_is_shared_by_every_node_through_redis(redis_running: RedisServer) -> None:
    node_a, node_b = RedisLimiter(redis_running.url), RedisLimiter(redis_running.url)
    rate = Rate(5, 60)
    key = f"check-in-code:{uuid.uuid4().hex}:s1"  # a session of its own (the Redis is shared)
    try:
        counts = [
            (await limiter.hit(key, rate)).count for limiter in (node_a, node_b, node_a, node_b, node_a)
        ]
        assert counts == [1, 2, 3, 4, 5]
        peeked = await node_b.peek(key, rate)
        assert not peeked.allowed
        assert 0 < peeked.retry_after <= 60  # the window's time left, for Retry-After
        verdict = await node_b.hit(key, rate)
        assert not verdict.allowed
        assert 0 < verdict.retry_after <= 60
        assert (await node_a.peek(key.replace(":s1", ":s2"), rate)).allowed
    finally:
        await node_a.close()
        await node_b.close()


def test_a_memory_window_ends_and_starts_again() -> None:
    clock = Ticking()
    limiter = MemoryLimiter(clock=clock, max_keys=3)
    rate = Rate(2, 10)
    assert [limiter.hit_now("k", rate).allowed for _ in range(3)] == [True, True, False]
    assert math.isclose(limiter.peek_now("k", rate).retry_after, 10)
    clock.now += 10
    assert limiter.hit_now("k", rate).allowed
    for n in range(10):  # bounded: old keys go first
        limiter.hit_now(f"other-{n}", rate)
    assert limiter.peek_now("k", rate).count == 0
    with pytest.raises(ValueError, match="count >= 1"):
        Rate(0, 10)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"http_user_rate_limit": 30, "http_address_rate_limit": 45})


async def test_requests_per_user_and_per_address_get_429_with_retry_after(
    world: World, http: httpx.AsyncClient
) -> None:
    # ``world`` made a dozen requests from this address already (all users).
    used = 0

    async def courses(user: str) -> httpx.Response:
        nonlocal used
        used += 1
        return await http.get("/api/courses", headers=world.users[user].headers)

    statuses = [(await courses("s1")).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30
    limited = await courses("s1")
    assert limited.status_code == 429
    assert limited.json()["reason"] == "rate_limited"
    assert "HTTP_USER_RATE_LIMIT" in limited.json()["detail"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another user goes on, until the address's limit.
    answers: list[Any] = []
    for _ in range(20):
        answers.append(await courses("s2"))
    assert {a.status_code for a in answers} == {200, 429}
    by_address = next(a for a in answers if a.status_code == 429)
    assert "HTTP_ADDRESS_RATE_LIMIT" in by_address.json()["detail"]
    assert by_address.headers["retry-after"].isdigit()
    # Probes are not counted.
    assert (await http.get("/healthz")).status_code == 200


async def test_http_rate_limits_false_turns_them_off(settings: Settings, app: Application) -> None:
    from attendance_live.app import create_app

    off = create_app(settings.model_copy(update={"http_rate_limits": False}))
    transport = httpx.ASGITransport(app=off.asgi)
    async with (
        off.http.router.lifespan_context(off.http),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        token = app.context.tokens.mint("t9", name="T", role="teacher", ttl_seconds=600)
        for _ in range(60):
            response = await client.get("/api/courses", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
        await off.realtime.close()

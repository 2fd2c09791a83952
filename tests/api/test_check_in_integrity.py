"""Check-in integrity over HTTP: rotating codes, network rules, refusals, the audit trail, races."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.config import Settings
from attendance_live.db.models import AttendanceRecord, RecordChange
from tests.helpers import FakeClock, World

PROXY = ("10.99.0.1", 40000)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual settings, with a proxy network trusted (PROXY is in it; the test client is not)."""
    return Settings(**{**settings.model_dump(), "trusted_proxies": "10.99.0.0/16"})


@asynccontextmanager
async def client_from(app: Application, peer: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests come from ``peer`` (the TCP peer the app sees)."""
    transport = httpx.ASGITransport(app=app.asgi, client=peer)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def check_in(
    http: httpx.AsyncClient, world: World, user: str, session_id: str, **body: Any
) -> httpx.Response:
    return await http.post(
        f"/api/sessions/{session_id}/check-in", json=body or None, headers=world.users[user].headers
    )


async def records(app: Application, session_id: str) -> dict[str, tuple[str, str | None]]:
    async with app.context.database.read() as db:
        rows = await db.execute(
            select(AttendanceRecord.user_id, AttendanceRecord.status, AttendanceRecord.marked_by).where(
                AttendanceRecord.session_id == session_id
            )
        )
        return {user: (status, by) for user, status, by in rows}


async def changes(app: Application, session_id: str) -> list[dict[str, Any]]:
    async with app.context.database.read() as db:
        rows = await db.execute(
            select(RecordChange).where(RecordChange.session_id == session_id).order_by(RecordChange.id)
        )
        return [
            {
                "user_id": c.user_id,
                "status": c.status,
                "method": c.method,
                "changed_by": c.changed_by,
                "address": c.address,
                "device_id": c.device_id,
                "same_address_as": c.same_address_as,
                "same_device_as": c.same_device_as,
            }
            for c in rows.scalars()
        ]


def step_of(session: dict[str, Any], now: datetime) -> int:
    started = datetime.fromisoformat(session["started_at"])
    return int((now - started) / timedelta(seconds=session["code_period_seconds"]))


# --------------------------------------------------------------- the session body


async def test_the_session_body_carries_the_check_in_rules(world: World) -> None:
    open_session = await world.start()
    assert open_session["check_in_mode"] == "open"
    assert open_session["code_period_seconds"] == 15
    assert open_session["allowed_networks"] is None
    coded = await world.start(
        check_in_mode="code", code_period_seconds=30, allowed_networks=["10.20.0.0/16", "2001:db8::/48"]
    )
    assert coded["check_in_mode"] == "code"
    assert coded["code_period_seconds"] == 30
    assert coded["allowed_networks"] == ["10.20.0.0/16", "2001:db8::/48"]
    read = await world.http.get(f"/api/sessions/{coded['id']}", headers=world.users["s1"].headers)
    assert read.json()["allowed_networks"] == ["10.20.0.0/16", "2001:db8::/48"]
    assert "code_secret" not in read.json()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"check_in_mode": "qr"}, "check_in_mode"),
        ({"code_period_seconds": 4}, "code_period_seconds"),
        ({"code_period_seconds": 301}, "code_period_seconds"),
        ({"allowed_networks": ["10.0.0.1/8"]}, "10.0.0.1/8"),
        ({"allowed_networks": ["campus"]}, "campus"),
        ({"allowed_networks": [f"10.{i}.0.0/16" for i in range(33)]}, "allowed_networks"),
        ({"allowed_networks": []}, "allowed_networks"),
    ],
)
async def test_bad_rules_are_refused_naming_the_field(world: World, body: dict[str, Any], named: str) -> None:
    response = await world.http.post(
        f"/api/courses/{world.course_id}/sessions", json=body, headers=world.teacher.headers
    )
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]


# --------------------------------------------------------------- the code endpoint


async def test_the_teacher_reads_the_code_in_force_with_its_link(world: World, clock: FakeClock) -> None:
    session = await world.start(check_in_mode="code", code_period_seconds=20)
    clock.advance(seconds=25)
    body = await world.check_in_code(session["id"])
    assert set(body) == {"session_id", "code", "period_seconds", "expires_at", "check_in_url"}
    assert body["session_id"] == session["id"]
    assert body["period_seconds"] == 20
    assert len(body["code"]) == 6
    started = datetime.fromisoformat(session["started_at"])
    assert datetime.fromisoformat(body["expires_at"]) == started + timedelta(seconds=40)
    assert body["check_in_url"] == f"/check-in/{session['id']}?code={body['code']}"
    again = await world.check_in_code(session["id"])
    assert again == body  # asking again never makes another code


async def test_only_the_teacher_reads_the_code_and_not_when_open_or_ended(world: World) -> None:
    coded = await world.start(check_in_mode="code")
    url = f"/api/sessions/{coded['id']}/check-in-code"
    admin = await world.http.get(url, headers=world.admin.headers)
    assert admin.status_code == 200
    student = await world.http.get(url, headers=world.users["s1"].headers)
    assert student.status_code == 403
    outsider = await world.http.get(url, headers=world.users["outsider"].headers)
    assert outsider.status_code == 404
    open_session = await world.start()
    opened = await world.http.get(
        f"/api/sessions/{open_session['id']}/check-in-code", headers=world.teacher.headers
    )
    assert opened.status_code == 409
    assert "open mode" in opened.json()["detail"]
    await world.end(coded["id"])
    ended = await world.http.get(url, headers=world.teacher.headers)
    assert ended.status_code == 409


# --------------------------------------------------------------- code mode


async def test_a_code_session_needs_the_code_and_a_refusal_changes_nothing(
    app: Application, world: World, http: httpx.AsyncClient
) -> None:
    session = await world.start(check_in_mode="code")
    sid = session["id"]
    missing = await check_in(http, world, "s1", sid)
    assert missing.status_code == 403
    assert missing.json()["reason"] == "code_required"
    assert "type the code" in missing.json()["detail"]
    for empty in ("", "   "):  # as docs/api.md says: an empty code is no code, not a 422
        refused = await check_in(http, world, "s1", sid, code=empty)
        assert refused.status_code == 403
        assert refused.json()["reason"] == "code_required"
    wrong = await check_in(http, world, "s1", sid, code="AAAAAA")
    assert wrong.status_code == 403
    assert wrong.json()["reason"] == "code_invalid"
    assert "AAAAAA" not in wrong.text
    assert await records(app, sid) == {u: ("absent", None) for u in ("s1", "s2", "s3")}
    assert await changes(app, sid) == []

    code = (await world.check_in_code(sid))["code"]
    accepted = await check_in(http, world, "s1", sid, code=code.lower())
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "present"
    assert accepted.json()["audit"] is None  # the trail is the teacher's
    assert (await records(app, sid))["s1"] == ("present", "s1")


async def test_the_code_of_another_session_is_refused(world: World, http: httpx.AsyncClient) -> None:
    first = await world.start(check_in_mode="code")
    second = await world.start(check_in_mode="code")
    code = (await world.check_in_code(second["id"]))["code"]
    response = await check_in(http, world, "s1", first["id"], code=code)
    assert response.status_code == 403
    assert response.json()["reason"] == "code_invalid"


async def test_clock_edges_last_millisecond_grace_boundary_and_older_codes(
    app: Application, world: World, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    session = await world.start(check_in_mode="code", code_period_seconds=15)
    sid = session["id"]
    first = (await world.check_in_code(sid))["code"]
    started = datetime.fromisoformat(session["started_at"])

    clock.now = started + timedelta(milliseconds=14_999)  # the last millisecond of step 0
    assert (await world.check_in_code(sid))["code"] == first
    assert (await check_in(http, world, "s1", sid, code=first)).status_code == 200

    clock.now = started + timedelta(seconds=19, milliseconds=999)  # step 1, last ms of the grace
    assert (await world.check_in_code(sid))["code"] != first
    assert (await check_in(http, world, "s2", sid, code=first)).status_code == 200

    clock.now = started + timedelta(seconds=20)  # the grace is over, exactly
    late = await check_in(http, world, "s3", sid, code=first)
    assert late.status_code == 403
    assert late.json()["reason"] == "code_invalid"

    clock.now = started + timedelta(seconds=31)  # step 2: step 0's code is two steps old
    older = await check_in(http, world, "s3", sid, code=first)
    assert older.json()["reason"] == "code_invalid"
    assert (await records(app, sid))["s3"] == ("absent", None)
    current = (await world.check_in_code(sid))["code"]
    assert (await check_in(http, world, "s3", sid, code=current)).status_code == 200


async def test_a_session_ended_between_reading_the_code_and_checking_in(
    app: Application, world: World, http: httpx.AsyncClient
) -> None:
    session = await world.start(check_in_mode="code")
    code = (await world.check_in_code(session["id"]))["code"]
    await world.end(session["id"])
    response = await check_in(http, world, "s1", session["id"], code=code)
    assert response.status_code == 409
    assert "ended" in response.json()["detail"]
    assert (await records(app, session["id"]))["s1"] == ("absent", None)


async def test_open_mode_takes_no_code_and_ignores_one(world: World, http: httpx.AsyncClient) -> None:
    session = await world.start()
    assert (await check_in(http, world, "s1", session["id"])).status_code == 200
    assert (await check_in(http, world, "s2", session["id"], code="ANYTHING")).status_code == 200


async def test_the_check_in_body_is_validated(world: World, http: httpx.AsyncClient) -> None:
    session = await world.start(check_in_mode="code")
    unknown = await check_in(http, world, "s1", session["id"], pin="123")
    assert unknown.status_code == 422
    long_code = await check_in(http, world, "s1", session["id"], code="X" * 33)
    assert long_code.status_code == 422
    bad_device = await check_in(http, world, "s1", session["id"], code="AAAAAA", device_id="bad device")
    assert bad_device.status_code == 422


# --------------------------------------------------------------- network rules


async def test_network_rules_admit_the_room_and_refuse_elsewhere(app: Application, world: World) -> None:
    session = await world.start(allowed_networks=["10.20.0.0/16", "2001:db8:20::/48"])
    sid = session["id"]
    async with client_from(app, ("10.20.3.4", 5000)) as in_room:
        assert (await check_in(in_room, world, "s1", sid)).status_code == 200
    async with client_from(app, ("2001:db8:20::7", 5000)) as in_room_v6:
        assert (await check_in(in_room_v6, world, "s2", sid)).status_code == 200
    async with client_from(app, ("192.0.2.8", 5000)) as at_home:
        refused = await check_in(at_home, world, "s3", sid)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "network_not_allowed"
    assert "192.0.2.8" in refused.json()["detail"]
    assert "Wi-Fi" in refused.json()["detail"]
    assert (await records(app, sid))["s3"] == ("absent", None)


async def test_network_rules_apply_before_the_code(app: Application, world: World) -> None:
    session = await world.start(check_in_mode="code", allowed_networks=["10.20.0.0/16"])
    async with client_from(app, ("192.0.2.8", 5000)) as at_home:
        refused = await check_in(at_home, world, "s1", session["id"])
    assert refused.json()["reason"] == "network_not_allowed"


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(app: Application, world: World) -> None:
    session = await world.start(allowed_networks=["10.20.0.0/16"])
    async with client_from(app, ("192.0.2.8", 5000)) as spoofer:
        response = await spoofer.post(
            f"/api/sessions/{session['id']}/check-in",
            headers={**world.users["s1"].headers, "X-Forwarded-For": "10.20.0.9"},
        )
    assert response.status_code == 403
    assert response.json()["reason"] == "network_not_allowed"


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(app: Application, world: World) -> None:
    session = await world.start(allowed_networks=["10.20.0.0/16"])
    sid = session["id"]
    async with client_from(app, PROXY) as proxy:
        forged = await proxy.post(
            f"/api/sessions/{sid}/check-in",
            # The client wrote 10.20.0.9 itself; the proxy appended the address it saw.
            headers={**world.users["s1"].headers, "X-Forwarded-For": "10.20.0.9, 192.0.2.8"},
        )
        assert forged.status_code == 403
        assert forged.json()["reason"] == "network_not_allowed"
        real = await proxy.post(
            f"/api/sessions/{sid}/check-in",
            headers={**world.users["s2"].headers, "X-Forwarded-For": "10.20.5.5"},
        )
        assert real.status_code == 200, real.text
    assert [(c["user_id"], c["address"]) for c in await changes(app, sid)] == [("s2", "10.20.5.5")]


# --------------------------------------------------------------- audit


async def test_the_audit_trail_shows_who_how_and_from_where_to_the_teacher_only(
    app: Application, world: World
) -> None:
    session = await world.start()
    sid = session["id"]
    async with client_from(app, ("10.20.0.1", 5000)) as phone:
        assert (await check_in(phone, world, "s1", sid, device_id="phone-a")).status_code == 200
        # Same phone, another student: flagged twice (address and device), not refused.
        assert (await check_in(phone, world, "s2", sid, device_id="phone-a")).status_code == 200
    async with client_from(app, ("10.20.0.2", 5000)) as laptop:
        mark = await laptop.put(
            f"/api/sessions/{sid}/records/s3", json={"status": "excused"}, headers=world.teacher.headers
        )
        assert mark.status_code == 200
        assert mark.json()["audit"]["how"] == "teacher_mark"

    assert await changes(app, sid) == [
        {
            "user_id": "s1",
            "status": "present",
            "method": "check_in",
            "changed_by": "s1",
            "address": "10.20.0.1",
            "device_id": "phone-a",
            "same_address_as": None,
            "same_device_as": None,
        },
        {
            "user_id": "s2",
            "status": "present",
            "method": "check_in",
            "changed_by": "s2",
            "address": "10.20.0.1",
            "device_id": "phone-a",
            "same_address_as": "s1",
            "same_device_as": "s1",
        },
        {
            "user_id": "s3",
            "status": "excused",
            "method": "teacher_mark",
            "changed_by": "teacher",
            "address": "10.20.0.2",
            "device_id": None,
            "same_address_as": None,
            "same_device_as": None,
        },
    ]
    teacher_view = await world.http.get(f"/api/sessions/{sid}", headers=world.teacher.headers)
    audits = {r["user_id"]: r["audit"] for r in teacher_view.json()["records"]}
    assert audits["s1"]["how"] == "check_in"
    assert audits["s1"]["address"] == "10.20.0.1"
    assert audits["s1"]["same_address_as"] is None
    assert (audits["s2"]["same_address_as"], audits["s2"]["same_device_as"]) == ("s1", "s1")
    assert (audits["s3"]["how"], audits["s3"]["by"], audits["s3"]["address"]) == (
        "teacher_mark",
        "teacher",
        "10.20.0.2",
    )
    student_view = await world.http.get(f"/api/sessions/{sid}", headers=world.users["s2"].headers)
    assert [r["audit"] for r in student_view.json()["records"]] == [None]


async def test_a_teacher_mark_after_a_flagged_check_in_keeps_the_flag(app: Application, world: World) -> None:
    session = await world.start()
    sid = session["id"]
    async with client_from(app, ("10.20.0.1", 5000)) as phone:
        await check_in(phone, world, "s1", sid)
        await check_in(phone, world, "s2", sid)
    mark = await world.http.put(
        f"/api/sessions/{sid}/records/s2", json={"status": "late"}, headers=world.teacher.headers
    )
    audit = mark.json()["audit"]
    assert (audit["how"], audit["same_address_as"]) == ("teacher_mark", "s1")


# --------------------------------------------------------------- races


async def test_the_same_student_twice_at_once_changes_the_record_once(
    app: Application, world: World, http: httpx.AsyncClient
) -> None:
    session = await world.start(check_in_mode="code")
    code = (await world.check_in_code(session["id"]))["code"]
    racing = (check_in(http, world, "s1", session["id"], code=code) for _ in range(5))
    responses = await asyncio.gather(*racing)
    assert [r.status_code for r in responses] == [200] * 5
    assert {r.json()["status"] for r in responses} == {"present"}
    assert [c["user_id"] for c in await changes(app, session["id"])] == ["s1"]


async def test_codes_follow_the_clock_not_the_reads(world: World, clock: FakeClock) -> None:
    session = await world.start(check_in_mode="code", code_period_seconds=5)
    seen = set()
    for _ in range(4):
        seen.add((await world.check_in_code(session["id"]))["code"])
    assert len(seen) == 1
    clock.advance(seconds=5)
    step = step_of(session, clock.now)
    assert step == 1
    assert (await world.check_in_code(session["id"]))["code"] != next(iter(seen))


async def test_no_code_reaches_the_log(
    world: World, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = await world.start(check_in_mode="code")
    code = (await world.check_in_code(session["id"]))["code"]
    await check_in(http, world, "s1", session["id"], code="WRONG7")
    await check_in(http, world, "s2", session["id"], code=code)
    assert caplog.records, "something was logged at DEBUG"
    assert code not in caplog.text
    assert "WRONG7" not in caplog.text

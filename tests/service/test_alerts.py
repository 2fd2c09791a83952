"""Absence follow-up: each kind of threshold fires once per crossing, and who is told how (the
dashboard's socket event and alert list, email through a local SMTP server, the webhook)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.engine import Connection

from attendance_live.app import Application
from attendance_live.auth.tokens import Identity
from attendance_live.config import Settings
from attendance_live.db.models import AttendanceRecord
from attendance_live.service.absence_rules import measure
from attendance_live.service.events import RecordChanged
from attendance_live.service.outbox import record_row
from attendance_live.service.views import RecordView
from tests.helpers import FakeClock, Recorder, World
from tests.mail_server import MailServer
from tests.webhook_receiver import Receiver


@pytest.fixture
def mail() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, mail: MailServer) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": SecretStr(mail.url),
            "smtp_from": "attendance@example.edu",
            "dashboard_url": "https://attendance.example.edu",
            "webhook_allowed_networks": (ipaddress.ip_network("127.0.0.0/8"),),
        }
    )


async def set_rules(http: httpx.AsyncClient, world: World, *rules: dict[str, Any]) -> list[dict[str, Any]]:
    response = await http.put(
        "/api/courses/cs101/absence-rules", json={"rules": list(rules)}, headers=world.teacher.headers
    )
    assert response.status_code == 200, response.text
    views: list[dict[str, Any]] = response.json()
    return views


async def hold_session(app: Application, world: World, present: tuple[str, ...] = ()) -> str:
    """A session in which ``present`` check in and everyone else stays absent; alerts looked at after.
    Each starts a day after the one before (a streak is the latest sessions, in start order)."""
    clock = app.context.service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(days=1)
    session = await world.start()
    for user_id in present:
        assert (await world.check_in(user_id, session["id"])).status_code == 200
    assert (await world.end(session["id"])).status_code == 200
    await app.term.alerts_loop.settled()
    session_id: str = session["id"]
    return session_id


async def alerts(
    http: httpx.AsyncClient, world: World, who: str = "teacher", state: str = "all"
) -> list[Any]:
    response = await http.get(f"/api/courses/cs101/alerts?state={state}", headers=world.users[who].headers)
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()
    return found


def test_measure_counts_as_the_course_report_does() -> None:
    m = measure(["present", "late", "excused", "absent", "absent"])
    assert (m.sessions, m.absences, m.attended, m.excused, m.streak) == (5, 2, 2, 1, 2)
    assert m.rate == 0.5
    assert measure(["excused"]).rate is None
    assert measure(["absent", "present"]).streak == 0


async def test_an_absence_count_fires_once_when_crossed(
    app: Application, http: httpx.AsyncClient, world: World, mail: MailServer
) -> None:
    await set_rules(http, world, {"kind": "absences", "count": 3})
    await hold_session(app, world, present=("s2", "s3"))
    await hold_session(app, world, present=("s2", "s3"))
    assert await alerts(http, world) == []
    third = await hold_session(app, world, present=("s2", "s3"))
    fired = await alerts(http, world)
    assert [(a["user_id"], a["absences"], a["session_id"]) for a in fired] == [("s1", 3, third)]
    assert fired[0]["message"] == "Alice has been absent from 3 sessions of CS101 (the threshold is 3)."
    assert fired[0]["student_message"] == "You have been absent from 3 of its sessions so far."
    assert fired[0]["rule"]["kind"] == "absences"
    await hold_session(app, world, present=("s2", "s3"))  # a fourth absence: still past it, no new alert
    assert len(await alerts(http, world)) == 1


async def test_a_rate_below_the_threshold_fires_once_per_crossing(
    app: Application, http: httpx.AsyncClient, world: World
) -> None:
    await set_rules(http, world, {"kind": "rate", "count": 4, "below": 0.8})
    everyone = ("s1", "s2", "s3")
    for present in (everyone, everyone, ("s1", "s3")):  # s2: 2 of 3, but fewer than 4 sessions
        await hold_session(app, world, present=present)
    assert await alerts(http, world) == []
    await hold_session(app, world, present=everyone)  # s2: 3 of 4 = 75 %
    first = await alerts(http, world)
    assert [(a["user_id"], a["attendance_rate"], a["sessions"]) for a in first] == [("s2", 0.75, 4)]
    assert first[0]["message"] == "Bilal's attendance in CS101 is 75% after 4 sessions, below 80%."
    await hold_session(app, world, present=everyone)  # 4 of 5 = 80 %: back at the threshold
    await hold_session(app, world, present=everyone)  # 5 of 6
    assert len(await alerts(http, world)) == 1
    await hold_session(app, world, present=("s1", "s3"))  # 5 of 7 = 71 %: a new crossing
    again = await alerts(http, world)
    assert [(a["user_id"], a["attendance_rate"]) for a in again] == [("s2", 0.7143), ("s2", 0.75)]


async def test_absences_in_a_row_fire_once_per_run(
    app: Application, http: httpx.AsyncClient, world: World
) -> None:
    await set_rules(http, world, {"kind": "streak", "count": 2})
    await hold_session(app, world, present=("s1", "s2"))  # s3 absent once
    assert await alerts(http, world) == []
    await hold_session(app, world, present=("s1", "s2"))  # twice in a row
    await hold_session(app, world, present=("s1", "s2"))  # three: the same run
    assert [(a["user_id"], a["streak"]) for a in await alerts(http, world)] == [("s3", 2)]
    await hold_session(app, world, present=("s1", "s2", "s3"))  # the run ends
    await hold_session(app, world, present=("s1", "s2"))
    await hold_session(app, world, present=("s1", "s2"))  # a new run of two
    assert [(a["user_id"], a["streak"]) for a in await alerts(http, world)] == [("s3", 2), ("s3", 2)]
    assert (await alerts(http, world))[0][
        "message"
    ] == "Chloe has missed the last 2 sessions of CS101 in a row."


async def test_the_dashboard_is_told_live_and_the_teacher_acknowledges(
    app: Application, live_url: str, http: httpx.AsyncClient, world: World
) -> None:
    await set_rules(http, world, {"kind": "absences", "count": 1})
    teacher, student, other = Recorder("teacher"), Recorder("s1"), Recorder("s2")
    await teacher.connect(live_url, world.teacher.token)
    await student.connect(live_url, world.users["s1"].token)
    await other.connect(live_url, world.users["s2"].token)
    try:
        session = await hold_session(app, world, present=("s2", "s3"))
        to_teacher = await teacher.next("absenceAlert")
        to_student = await student.next("absenceAlert")
        await other.barrier("cs101")
        assert other.count("absenceAlert") == 0  # another student is not told
    finally:
        for client in (teacher, student, other):
            await client.close()
    assert to_teacher == to_student
    assert to_teacher["user_id"] == "s1"
    assert to_teacher["course_id"] == "cs101"
    assert to_teacher["session_id"] == session
    open_list = await alerts(http, world, state="open")
    assert [a["id"] for a in open_list] == [to_teacher["id"]]
    assert [a["user_id"] for a in await alerts(http, world, who="s1")] == ["s1"]
    assert await alerts(http, world, who="s2") == []
    refused = await http.post(
        f"/api/alerts/{to_teacher['id']}/acknowledge", headers=world.users["s1"].headers
    )
    assert refused.status_code == 403
    done = await http.post(f"/api/alerts/{to_teacher['id']}/acknowledge", headers=world.teacher.headers)
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "teacher"
    assert await alerts(http, world, state="open") == []
    assert len(await alerts(http, world, state="all")) == 1


async def test_the_student_and_the_teacher_get_a_polite_email(
    app: Application, http: httpx.AsyncClient, world: World, mail: MailServer
) -> None:
    # The users' addresses: the student's from its enrollment, the teacher's from its token.
    response = await http.put(
        "/api/courses/cs101/enrollments/s1",
        json={"status": "approved", "name": "Alice", "email": "alice@example.edu"},
        headers=world.teacher.headers,
    )
    assert response.status_code == 200, response.text
    teacher = Identity(user_id="teacher", name="Grace Hopper", email="grace@example.edu", role="teacher")
    await app.context.service.users.remember(teacher)
    await set_rules(http, world, {"kind": "absences", "count": 1})
    await hold_session(app, world, present=("s2", "s3"))
    letters = {str(m["To"]): m for m in (await mail.next(), await mail.next())}
    assert set(letters) == {"alice@example.edu", "grace@example.edu"}
    to_student, to_teacher = letters["alice@example.edu"], letters["grace@example.edu"]
    assert to_student["From"] == "attendance@example.edu"
    assert to_student["Subject"] == "CS101: your attendance"
    body = to_student.get_content()
    assert body.startswith("Hello Alice,")
    assert "You have been absent from 1 of its sessions so far." in body
    assert "please have a word with Grace Hopper" in body
    assert "https://attendance.example.edu/courses/cs101" in body
    assert to_teacher["Subject"] == "CS101: absence alert for Alice"
    assert "Alice has been absent from 1 sessions of CS101" in to_teacher.get_content()
    assert mail.empty()


async def test_an_alert_goes_to_the_webhook(app: Application, http: httpx.AsyncClient, world: World) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        response = await http.post(
            "/api/webhooks",
            json={"url": receiver.url, "event_types": ["absence.alert"], "course_id": "cs101"},
            headers=world.admin.headers,
        )
        assert response.status_code == 201, response.text
        receiver.secret = response.json()["secret"]
        await set_rules(http, world, {"kind": "streak", "count": 1})
        await hold_session(app, world, present=("s1", "s2"))
        got = await receiver.wait_count(1)
    finally:
        await receiver.stop()
    assert got[0].verified
    assert got[0].body["type"] == "absence.alert"
    assert got[0].body["data"]["user_id"] == "s3"
    assert got[0].body["data"]["rule"]["kind"] == "streak"


async def test_rules_are_validated_and_for_managers(http: httpx.AsyncClient, world: World) -> None:
    url = "/api/courses/cs101/absence-rules"
    bad = await http.put(url, json={"rules": [{"kind": "rate", "count": 4}]}, headers=world.teacher.headers)
    assert bad.status_code == 422
    assert "needs below" in bad.json()["detail"]
    bad = await http.put(
        url, json={"rules": [{"kind": "absences", "count": 3, "below": 0.5}]}, headers=world.teacher.headers
    )
    assert bad.status_code == 422
    student = await http.put(url, json={"rules": []}, headers=world.users["s1"].headers)
    assert student.status_code == 403


async def test_a_record_changed_after_its_session_ended_is_looked_at(
    app: Application, http: httpx.AsyncClient, world: World
) -> None:
    # The API keeps ended sessions' records final today; a correction written by another path (an
    # import, a later API) is a record row in the outbox like any other, and is looked at the same way.
    await set_rules(http, world, {"kind": "absences", "count": 2})
    await hold_session(app, world, present=("s1", "s2", "s3"))
    corrected = await hold_session(app, world, present=("s2", "s3"))
    assert await alerts(http, world) == []
    database = app.context.database
    service = app.context.service

    def correct(conn: Connection) -> None:
        conn.execute(
            update(AttendanceRecord)
            .where(AttendanceRecord.session_id == corrected, AttendanceRecord.user_id == "s2")
            .values(status="absent")
        )
        record = RecordView(
            user_id="s2", name="Bilal", status="absent", marked_at=None, marked_by="teacher", remarks=None
        )
        service.outbox.append(
            conn, [record_row(RecordChanged("cs101", corrected, "s2", True), record)], service.clock()
        )

    await database.run_write(correct)
    await app.term.alerts_loop.settled()
    assert await alerts(http, world) == []  # one absence so far
    third = await hold_session(app, world, present=("s1", "s3"))
    fired = await alerts(http, world)
    assert [(a["user_id"], a["absences"], a["session_id"]) for a in fired] == [("s2", 2, third)]
    # And a correction that takes an absence away re-arms the rule: the next crossing is told again.

    def excuse(conn: Connection) -> None:
        conn.execute(
            update(AttendanceRecord)
            .where(AttendanceRecord.session_id == third, AttendanceRecord.user_id == "s2")
            .values(status="excused")
        )
        record = RecordView(
            user_id="s2", name="Bilal", status="excused", marked_at=None, marked_by="teacher", remarks=None
        )
        service.outbox.append(
            conn, [record_row(RecordChanged("cs101", third, "s2", True), record)], service.clock()
        )

    await database.run_write(excuse)
    await app.term.alerts_loop.settled()
    assert len(await alerts(http, world)) == 1
    fourth = await hold_session(app, world, present=("s1", "s3"))
    assert [(a["user_id"], a["session_id"]) for a in await alerts(http, world)] == [
        ("s2", fourth),
        ("s2", third),
    ]

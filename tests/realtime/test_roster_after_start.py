"""Starts announced at once (issue 22): the roster's rows come after the announcement.

The starting node's second transaction is held at a gate (``RosterFill.gate``), so
each test sees the state between the two transactions deterministically: the start
is announced and answered, no roster row is written yet, and every read still
counts the whole roster (the approved enrollments at the start) as absent.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import func, select

from attendance_live.app import Application
from attendance_live.db.engine import Database
from attendance_live.db.models import AttendanceRecord, AttendanceSession
from attendance_live.service.roster_fill import RosterFill
from tests.helpers import Recorder, World

Make = Callable[[str], Recorder]
ROSTER = {"s1", "s2", "s3"}  # the world's approved students


class Gate:
    """Holds the starting node's second transaction until ``open``; says when it is held."""

    def __init__(self) -> None:
        self.held: asyncio.Queue[str] = asyncio.Queue()
        self._open = asyncio.Event()

    async def __call__(self, session_id: str) -> None:
        self.held.put_nowait(session_id)
        await self._open.wait()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open = asyncio.Event()


@pytest.fixture
def gate(app: Application) -> Gate:
    gate = Gate()
    app.context.service.rosters.gate = gate
    return gate


async def stored(app: Application, session_id: str) -> tuple[dict[str, str], bool]:
    """The session's stored records (user → status) and whether its roster is still pending."""
    async with app.context.database.read() as db:
        rows = await db.execute(
            select(AttendanceRecord.user_id, AttendanceRecord.status).where(
                AttendanceRecord.session_id == session_id
            )
        )
        records: dict[str, str] = {user_id: status for user_id, status in rows}
        pending = await db.scalar(
            select(AttendanceSession.roster_pending).where(AttendanceSession.id == session_id)
        )
    return records, bool(pending)


async def session_body(world: World, session_id: str, who: str = "teacher") -> dict[str, object]:
    response = await world.http.get(f"/api/sessions/{session_id}", headers=world.users[who].headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def statuses(body: dict[str, object]) -> dict[str, str]:
    records = body["records"]
    assert isinstance(records, list)
    return {r["user_id"]: r["status"] for r in records}


def counts(body: dict[str, object], key: str = "statistics") -> tuple[int, int, int]:
    stats = body[key]
    assert isinstance(stats, dict)
    return stats["present"], stats["absent"], stats["total"]


async def test_the_start_is_announced_before_its_roster_rows_are_written(
    live_url: str, world: World, app: Application, gate: Gate, recorders: Make
) -> None:
    teacher = recorders("teacher")
    await teacher.connect(live_url, world.teacher.token)
    await teacher.call("subscribeToCourse", {"course_id": world.course_id})
    await teacher.next("activeSessionsData")

    started = await world.start(topic="At once")
    assert started["records"] == []  # the roster comes from GET /api/sessions/{id}
    assert counts(started) == (0, 3, 3)
    sid = started["id"]
    assert await gate.held.get() == sid  # the second transaction is waiting

    announced = await teacher.next("courseSessionStarted")
    assert announced["session_id"] == sid
    snapshot = await teacher.next("activeSessionsData")
    assert [(s["sessionId"], s["studentCount"]) for s in snapshot["activeSessions"]] == [(sid, 0)]
    assert await stored(app, sid) == ({}, True)  # announced, and not one roster row written

    # Meanwhile a missing row reads as absent everywhere.
    body = await session_body(world, sid)
    assert statuses(body) == dict.fromkeys(ROSTER, "absent")
    assert counts(body) == (0, 3, 3)
    assert statuses(await session_body(world, sid, "s2")) == {"s2": "absent"}  # a student: its own
    report = await world.http.get(f"/api/sessions/{sid}/report.csv", headers=world.teacher.headers)
    assert report.status_code == 200
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert {(row["user_id"], row["status"]) for row in rows} == {(u, "absent") for u in ROSTER}
    active = await world.http.get(
        f"/api/courses/{world.course_id}/active-sessions", headers=world.teacher.headers
    )
    assert [s["studentCount"] for s in active.json()["activeSessions"]] == [0]

    # A check-in before the rows exist works, and counts.
    checked = await world.check_in("s1", sid)
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "present"
    assert counts(await session_body(world, sid)) == (1, 2, 3)
    assert await stored(app, sid) == ({"s1": "present"}, True)

    gate.open()
    await app.context.service.rosters.idle()
    assert await stored(app, sid) == ({"s1": "present", "s2": "absent", "s3": "absent"}, False)
    body = await session_body(world, sid)
    assert statuses(body) == {"s1": "present", "s2": "absent", "s3": "absent"}
    assert counts(body) == (1, 2, 3)
    assert teacher.count("courseSessionStarted") == 1


async def test_a_pending_roster_counts_its_own_missing_rows_not_another_sessions(
    world: World, app: Application, gate: Gate
) -> None:
    first = (await world.start())["id"]
    await gate.held.get()
    gate.open()
    await app.context.service.rosters.idle()
    await world.check_in("s1", first)
    assert (await world.end(first)).status_code == 200  # every student has a row in the first session
    gate.close()
    second = (await world.start())["id"]
    assert await gate.held.get() == second
    active = await world.http.get(
        f"/api/courses/{world.course_id}/active-sessions", headers=world.teacher.headers
    )
    assert [
        (s["sessionId"], s["studentCount"], s["totalStudents"]) for s in active.json()["activeSessions"]
    ] == [(second, 0, 3)]
    body = await session_body(world, second)
    assert statuses(body) == dict.fromkeys(ROSTER, "absent")
    assert counts(body) == (0, 3, 3)
    gate.open()


async def test_an_end_before_the_roster_is_written_writes_it_first(
    world: World, app: Application, gate: Gate
) -> None:
    started = await world.start()
    sid = started["id"]
    await gate.held.get()
    await world.check_in("s2", sid)
    ended = await world.end(sid)  # the second transaction is still held
    assert ended.status_code == 200, ended.text
    assert counts(ended.json(), "final_statistics") == (1, 2, 3)
    assert statuses(ended.json()) == {"s1": "absent", "s2": "present", "s3": "absent"}
    assert await stored(app, sid) == ({"s1": "absent", "s2": "present", "s3": "absent"}, False)

    gate.open()  # the held transaction finds nothing left to do
    await app.context.service.rosters.idle()
    assert await stored(app, sid) == ({"s1": "absent", "s2": "present", "s3": "absent"}, False)
    report = await world.http.get(f"/api/courses/{world.course_id}/report", headers=world.teacher.headers)
    assert report.status_code == 200
    assert {(s["user_id"], s["present"], s["absent"], s["sessions"]) for s in report.json()["students"]} == {
        ("s1", 0, 1, 1),
        ("s2", 1, 0, 1),
        ("s3", 0, 1, 1),
    }


async def test_a_student_guessing_codes_before_the_roster_is_written_is_flagged(
    world: World, app: Application, gate: Gate
) -> None:
    started = await world.start(check_in_mode="code")
    sid = started["id"]
    await gate.held.get()  # no roster row yet
    right = (await world.check_in_code(sid))["code"]
    wrong = "AAAAAA" if right != "AAAAAA" else "BBBBBB"
    answers = []
    for _ in range(6):  # CHECK_IN_CODE_ATTEMPTS (5) wrong codes, then the limit
        answer = await world.http.post(
            f"/api/sessions/{sid}/check-in", json={"code": wrong}, headers=world.users["s1"].headers
        )
        answers.append(answer.status_code)
    assert answers == [403] * 5 + [429]
    body = await session_body(world, sid)
    records = body["records"]
    assert isinstance(records, list)
    flagged = {r["user_id"] for r in records if r["code_attempts_blocked_at"] is not None}
    assert flagged == {"s1"}  # the flag wrote the roster it needed
    assert await stored(app, sid) == (dict.fromkeys(ROSTER, "absent"), False)
    gate.open()
    await app.context.service.rosters.idle()


async def test_enrollment_changes_between_the_two_transactions_leave_the_roster_as_at_the_start(
    world: World, app: Application, gate: Gate
) -> None:
    started = await world.start()
    sid = started["id"]
    await gate.held.get()
    teacher = world.teacher.headers
    # Approved after the start: not on the roster (it joins by checking in).
    approved = await world.http.put(
        f"/api/courses/{world.course_id}/enrollments/pending", json={"status": "approved"}, headers=teacher
    )
    assert approved.status_code == 200, approved.text
    # Removed after the start: was approved at the start, so it stays on this session's roster.
    removed = await world.http.delete(f"/api/courses/{world.course_id}/enrollments/s3", headers=teacher)
    assert removed.status_code in (200, 204), removed.text
    assert await stored(app, sid) == (dict.fromkeys(ROSTER, "absent"), False)

    gate.open()
    await app.context.service.rosters.idle()
    assert await stored(app, sid) == (dict.fromkeys(ROSTER, "absent"), False)
    assert counts(await session_body(world, sid)) == (0, 3, 3)
    late_joiner = await world.check_in("pending", sid)
    assert late_joiner.status_code == 200, late_joiner.text
    body = await session_body(world, sid)
    assert statuses(body) == {"s1": "absent", "s2": "absent", "s3": "absent", "pending": "present"}
    assert counts(body) == (1, 3, 4)


@pytest.fixture
async def other_node(app: Application) -> AsyncIterator[RosterFill]:
    """A second node's completer: its own engine on the same database."""
    database = Database(app.context.database.url)
    try:
        yield RosterFill(database)
    finally:
        await database.dispose()


async def test_completers_racing_on_two_nodes_write_each_row_once(
    world: World, app: Application, gate: Gate, other_node: RosterFill
) -> None:
    sid = (await world.start())["id"]
    await gate.held.get()
    here = app.context.service.rosters
    written = await asyncio.gather(
        here.complete(sid), other_node.complete(sid), here.complete(sid), other_node.complete(sid)
    )
    assert sorted(written) == [0, 0, 0, 3]  # one winner; the others found it done
    gate.open()
    await here.idle()
    assert await stored(app, sid) == (dict.fromkeys(ROSTER, "absent"), False)
    async with app.context.database.read() as db:
        total = await db.scalar(select(func.count()).where(AttendanceRecord.session_id == sid))
    assert total == 3


async def test_a_node_that_died_between_the_two_transactions_is_made_good_at_start_up(
    world: World, app: Application, gate: Gate, other_node: RosterFill
) -> None:
    sid = (await world.start())["id"]
    await gate.held.get()
    await app.context.service.rosters.close()  # the node stops: its second transaction never runs
    assert await stored(app, sid) == ({}, True)
    assert counts(await session_body(world, sid)) == (0, 3, 3)
    assert await other_node.complete_pending() == 1  # what every node does at start-up
    assert await stored(app, sid) == (dict.fromkeys(ROSTER, "absent"), False)
    assert await other_node.complete_pending() == 0


async def test_the_relay_completes_a_start_whose_node_wrote_no_roster(
    world: World, app: Application, http: httpx.AsyncClient, gate: Gate
) -> None:
    rosters = app.context.service.rosters
    sid = (await world.start())["id"]
    await gate.held.get()
    await rosters.close()  # as if the starting node had died after its commit
    rosters.grace_seconds = 0
    rosters.expect(sid)  # what another node's relay does when it delivers the start
    await rosters.idle()
    assert await stored(app, sid) == (dict.fromkeys(ROSTER, "absent"), False)


async def test_the_roster_pages_read_the_same_before_and_after_its_rows_are_written(
    world: World, app: Application, gate: Gate
) -> None:
    sid = (await world.start())["id"]
    await gate.held.get()
    await world.check_in("s2", sid)
    url = f"/api/sessions/{sid}/records"

    async def pages(who: str = "teacher") -> list[tuple[int, list[tuple[str, str, str]]]]:
        found = []
        for offset in (0, 2):
            response = await world.http.get(
                url, params={"offset": offset, "limit": 2}, headers=world.users[who].headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            assert (page["session_id"], page["offset"], page["limit"]) == (sid, offset, 2)
            found.append((page["total"], [(r["user_id"], r["name"], r["status"]) for r in page["records"]]))
        return found

    expected = [
        (3, [("s1", "Alice", "absent"), ("s2", "Bilal", "present")]),
        (3, [("s3", "Chloe", "absent")]),
    ]
    assert await pages() == expected  # rows not written yet
    assert await pages("s3") == [(1, [("s3", "Chloe", "absent")]), (1, [])]
    gate.open()
    await app.context.service.rosters.idle()
    assert await pages() == expected  # the same once written
    first = await world.http.get(url, headers=world.teacher.headers)
    assert first.json()["limit"] == 500
    assert first.json()["records"][1]["audit"]["how"] == "check_in"  # the teacher sees the audit
    refused = {
        who: (await world.http.get(url, params=params, headers=world.users[who].headers)).status_code
        for who, params in (
            ("teacher", {"limit": 0}),
            ("teacher", {"offset": -1}),
            ("pending", {}),
            ("outsider", {}),
        )
    }
    assert refused == {"teacher": 422, "pending": 403, "outsider": 404}

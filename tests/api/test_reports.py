"""Course reports, the session CSV and xAPI exports, as a teacher, a student and an LRS see them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.helpers import FakeClock, World
from tests.xapi import statement_problems

DAY_1 = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
DAY_2 = datetime(2024, 1, 16, 9, 0, tzinfo=UTC)
DAY_3 = datetime(2024, 1, 17, 9, 0, tzinfo=UTC)


async def _mark(world: World, session_id: str, user_id: str, status: str, remarks: str | None = None) -> None:
    body: dict[str, Any] = {"status": status}
    if remarks is not None:
        body["remarks"] = remarks
    response = await world.http.put(
        f"/api/sessions/{session_id}/records/{user_id}", json=body, headers=world.teacher.headers
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def history(world: World, clock: FakeClock) -> dict[str, str]:
    """Day 1: s1 present, s2 late, s3 excused. Day 2: s1 absent, s2 present, s3 excused.
    Day 3: a session still active (s1 checked in), which no report counts."""
    clock.now = DAY_1
    first = (await world.start(late_after_minutes=5))["id"]
    assert (await world.check_in("s1", first)).json()["status"] == "present"
    clock.advance(minutes=7)
    assert (await world.check_in("s2", first)).json()["status"] == "late"
    await _mark(world, first, "s3", "excused", "doctor's note")
    assert (await world.end(first)).status_code == 200

    clock.now = DAY_2
    second = (await world.start())["id"]
    assert (await world.check_in("s2", second)).json()["status"] == "present"
    await _mark(world, second, "s3", "excused")
    assert (await world.end(second)).status_code == 200

    clock.now = DAY_3
    third = (await world.start())["id"]
    assert (await world.check_in("s1", third)).status_code == 200
    return {"first": first, "second": second, "third": third}


def _row(
    user_id: str, name: str, counts: tuple[int, int, int, int, int], rate: float | None
) -> dict[str, Any]:
    present, late, absent, excused, sessions = counts
    return {
        "user_id": user_id,
        "name": name,
        "present": present,
        "late": late,
        "absent": absent,
        "excused": excused,
        "sessions": sessions,
        "attendance_rate": rate,
    }


async def test_course_report_counts_each_status_apart(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    # approved after both sessions: on the roster, on no session of it
    world.user("newcomer", "Nadia")
    await http.put(
        f"/api/courses/{world.course_id}/enrollments/newcomer",
        json={"status": "approved", "name": "Nadia"},
        headers=world.teacher.headers,
    )
    response = await http.get(f"/api/courses/{world.course_id}/report", headers=world.teacher.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["course_id"] == "cs101"
    assert body["sessions"] == 2  # the active one is not counted
    assert body["from"] is None
    assert body["to"] is None
    assert body["students"] == [
        _row("s1", "Alice", (1, 0, 1, 0, 2), 0.5),
        _row("s2", "Bilal", (1, 1, 0, 0, 2), 1.0),
        _row("s3", "Chloe", (0, 0, 0, 2, 2), None),  # every session excused: no denominator
        _row("newcomer", "Nadia", (0, 0, 0, 0, 0), None),
    ]
    admin = await http.get(f"/api/courses/{world.course_id}/report", headers=world.admin.headers)
    assert admin.json() == body


async def test_a_student_gets_only_its_own_row(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    response = await http.get(f"/api/courses/{world.course_id}/report", headers=world.users["s1"].headers)
    assert response.status_code == 200
    assert response.json()["sessions"] == 2
    assert response.json()["students"] == [_row("s1", "Alice", (1, 0, 1, 0, 2), 0.5)]
    own_csv = await http.get(f"/api/courses/{world.course_id}/report.csv", headers=world.users["s1"].headers)
    assert [r["user_id"] for r in csv.DictReader(io.StringIO(own_csv.text))] == ["s1"]


async def test_a_student_rejected_later_keeps_its_history_in_the_teachers_report(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    await http.put(
        f"/api/courses/{world.course_id}/enrollments/s2",
        json={"status": "rejected"},
        headers=world.teacher.headers,
    )
    body = (await http.get(f"/api/courses/{world.course_id}/report", headers=world.teacher.headers)).json()
    assert [s["user_id"] for s in body["students"]] == ["s1", "s2", "s3"]
    rejected = await http.get(f"/api/courses/{world.course_id}/report", headers=world.users["s2"].headers)
    assert rejected.status_code == 404


@pytest.mark.parametrize(
    ("query", "sessions", "s2"),
    [
        ("from=2024-01-16", 1, (1, 0, 0, 0, 1)),
        ("to=2024-01-15", 1, (0, 1, 0, 0, 1)),
        ("from=2024-01-15&to=2024-01-15", 1, (0, 1, 0, 0, 1)),
        ("from=2024-01-15&to=2024-01-17", 2, (1, 1, 0, 0, 2)),
        ("from=2024-01-18", 0, (0, 0, 0, 0, 0)),
    ],
)
async def test_from_and_to_limit_the_sessions_by_their_start_day(
    world: World,
    http: httpx.AsyncClient,
    history: dict[str, str],
    query: str,
    sessions: int,
    s2: tuple[int, int, int, int, int],
) -> None:
    response = await http.get(f"/api/courses/{world.course_id}/report?{query}", headers=world.teacher.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sessions"] == sessions
    row = next(s for s in body["students"] if s["user_id"] == "s2")
    assert (row["present"], row["late"], row["absent"], row["excused"], row["sessions"]) == s2
    if "from=" in query:
        assert body["from"] == query.split("from=")[1][:10]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("from=2024-13-01", ["from", "YYYY-MM-DD"]),
        ("to=15/01/2024", ["to", "YYYY-MM-DD"]),
        ("from=2024-1-5", ["from", "YYYY-MM-DD"]),
        ("from=2024-01-17&to=2024-01-15", ["after", "swap"]),
        # Real dates the server cannot take (to=9999-12-31 was an OverflowError, a 500).
        ("to=9999-12-31", ["to=9999-12-31", "outside", "9999-12-30", "leave to out"]),
        ("from=9999-12-31", ["from=9999-12-31", "outside"]),
        ("from=0001-01-01&to=9999-12-31", ["from=0001-01-01", "1970-01-01"]),
        ("from=2024-01-01&to=9999-12-31", ["to=9999-12-31", "outside"]),
    ],
)
async def test_bad_dates_are_refused_with_the_fix(
    world: World, http: httpx.AsyncClient, query: str, words: list[str]
) -> None:
    for path in ("report", "report.csv", "report.xapi.json", "report/students/s1"):
        response = await http.get(
            f"/api/courses/{world.course_id}/{path}?{query}", headers=world.teacher.headers
        )
        assert response.status_code == 422, (path, response.text)
        for word in words:
            assert word in response.json()["detail"], (path, response.json())


async def test_course_report_csv_has_the_same_rows_and_neutralises_formulas(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    await http.put(
        f"/api/courses/{world.course_id}/enrollments/s1",
        json={"status": "approved", "name": "=HYPERLINK(1)"},
        headers=world.teacher.headers,
    )
    response = await http.get(f"/api/courses/{world.course_id}/report.csv", headers=world.teacher.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="attendance-cs101.csv"' in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert lines[0] == "user_id,name,present,late,absent,excused,sessions,attendance_rate"
    assert lines[1:] == [
        "s1,'=HYPERLINK(1),1,0,1,0,2,0.5000",
        "s2,Bilal,1,1,0,0,2,1.0000",
        "s3,Chloe,0,0,0,2,2,",
    ]


async def test_session_csv_keeps_the_students_own_check_in_apart_from_the_teachers_mark(
    world: World, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    session = await world.start()
    checked = (await world.check_in("s1", session["id"])).json()
    clock.advance(minutes=3)
    await _mark(world, session["id"], "s1", "late", "came back from the office")
    await _mark(world, session["id"], "s3", "excused")
    marked = (await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)).json()
    marks = {r["user_id"]: r for r in marked["records"]}
    response = await http.get(f"/api/sessions/{session['id']}/report.csv", headers=world.teacher.headers)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "user_id",
        "name",
        "email",
        "status",
        "checked_in_at",
        "marked_at",
        "marked_by",
        "remarks",
    ]
    by_user = {r["user_id"]: r for r in rows}
    assert by_user["s1"]["status"] == "late"
    assert by_user["s1"]["checked_in_at"] == checked["marked_at"]  # the student's own time survives
    assert by_user["s1"]["marked_at"] == marks["s1"]["marked_at"] != checked["marked_at"]
    assert by_user["s1"]["marked_by"] == "teacher"
    assert by_user["s3"]["checked_in_at"] == ""
    assert by_user["s3"]["marked_at"] == marks["s3"]["marked_at"]
    assert (by_user["s2"]["status"], by_user["s2"]["checked_in_at"], by_user["s2"]["marked_at"]) == (
        "absent",
        "",
        "",
    )


async def test_course_xapi_is_one_valid_attended_statement_per_record(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    response = await http.get(
        f"/api/courses/{world.course_id}/report.xapi.json", headers=world.teacher.headers
    )
    assert response.status_code == 200, response.text
    statements = response.json()
    assert len(statements) == 6  # 3 records in each of the 2 ended sessions
    for statement in statements:
        assert statement_problems(statement) == [], statement
        assert statement["verb"] == {
            "id": "http://adlnet.gov/expapi/verbs/attended",
            "display": {"en-US": "attended"},
        }
        assert statement["actor"]["account"]["homePage"] == "http://test"
        parent = statement["context"]["contextActivities"]["parent"]
        assert [a["id"] for a in parent] == ["http://test/api/courses/cs101"]
    assert len({s["id"] for s in statements}) == 6
    seen = {
        (s["object"]["id"], s["actor"]["account"]["name"]): (
            s["result"]["extensions"]["http://test/xapi/extensions/attendance-status"],
            s["result"]["completion"],
            s["actor"]["name"],
        )
        for s in statements
    }
    first = f"http://test/api/sessions/{history['first']}"
    second = f"http://test/api/sessions/{history['second']}"
    assert seen == {
        (first, "s1"): ("present", True, "Alice"),
        (first, "s2"): ("late", True, "Bilal"),
        (first, "s3"): ("excused", False, "Chloe"),
        (second, "s1"): ("absent", False, "Alice"),
        (second, "s2"): ("present", True, "Bilal"),
        (second, "s3"): ("excused", False, "Chloe"),
    }
    alice_first = next(
        s for s in statements if s["object"]["id"] == first and s["actor"]["account"]["name"] == "s1"
    )
    assert alice_first["timestamp"] == "2024-01-15T09:00:00.000Z"  # her check-in
    # The same records, the same statement ids: an LRS keeps one copy across exports.
    again = await http.get(f"/api/courses/{world.course_id}/report.xapi.json", headers=world.teacher.headers)
    assert [s["id"] for s in again.json()] == [s["id"] for s in statements]
    limited = await http.get(
        f"/api/courses/{world.course_id}/report.xapi.json?from=2024-01-16", headers=world.teacher.headers
    )
    assert {s["object"]["id"] for s in limited.json()} == {second}


async def test_session_xapi_covers_ended_sessions_only(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    ended = await http.get(
        f"/api/sessions/{history['first']}/report.xapi.json", headers=world.teacher.headers
    )
    assert sorted(s["actor"]["account"]["name"] for s in ended.json()) == ["s1", "s2", "s3"]
    active = await http.get(
        f"/api/sessions/{history['third']}/report.xapi.json", headers=world.teacher.headers
    )
    assert active.status_code == 200
    assert active.json() == []


def test_the_xapi_checker_catches_broken_statements() -> None:
    broken = {
        "id": "not-a-uuid",
        "actor": {"name": "A", "mbox": "mailto:a@example.org", "account": {"homePage": "x", "name": ""}},
        "verb": {"id": "attended", "display": {"en_US": 1}},
        "object": {"id": "/relative", "definition": {"name": "plain"}},
        "context": {"contextActivities": {"siblings": []}},
        "timestamp": "yesterday",
        "color": "blue",
    }
    problems = "\n".join(statement_problems(broken))
    for expected in (
        "statement.id",
        "exactly one inverse functional identifier",
        "actor.account.homePage",
        "verb.id",
        "'en_US' is not an RFC 5646",
        "object.id",
        "object.definition.name",
        "'siblings' is not allowed",
        "timestamp",
        "'color' is not allowed",
    ):
        assert expected in problems, expected
    assert statement_problems({"actor": {}, "verb": {}}) != []


async def test_server_config_gives_the_start_forms_defaults(world: World, http: httpx.AsyncClient) -> None:
    response = await http.get("/api/config", headers=world.users["s1"].headers)
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("session_max_minutes", "late_after_minutes")} == {
        "session_max_minutes": 180,
        "late_after_minutes": 10,
    }
    assert body["max_duration_minutes_limit"] == 1440


async def test_a_students_history_is_its_status_in_each_ended_session(
    world: World, http: httpx.AsyncClient, history: dict[str, str]
) -> None:
    own = await http.get(
        f"/api/courses/{world.course_id}/report/students/s2", headers=world.users["s2"].headers
    )
    assert own.status_code == 200, own.text
    body = own.json()
    assert (body["user_id"], body["name"], body["from"], body["to"]) == ("s2", "Bilal", None, None)
    assert [(s["session_id"], s["status"], s["started_at"]) for s in body["sessions"]] == [
        (history["first"], "late", "2024-01-15T09:00:00.000Z"),
        (history["second"], "present", "2024-01-16T09:00:00.000Z"),
    ]
    by_teacher = await http.get(
        f"/api/courses/{world.course_id}/report/students/s2?to=2024-01-15", headers=world.teacher.headers
    )
    assert [s["status"] for s in by_teacher.json()["sessions"]] == ["late"]
    other = await http.get(
        f"/api/courses/{world.course_id}/report/students/s2", headers=world.users["s1"].headers
    )
    assert other.status_code == 403
    assert "only its own" in other.json()["detail"]
    stranger = await http.get(
        f"/api/courses/{world.course_id}/report/students/outsider", headers=world.teacher.headers
    )
    assert stranger.status_code == 404
    outsider = await http.get(
        f"/api/courses/{world.course_id}/report/students/outsider", headers=world.users["outsider"].headers
    )
    assert outsider.status_code == 404

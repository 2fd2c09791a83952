"""The whole life of a session through the HTTP API, as a teacher and students see it."""

from __future__ import annotations

import csv
import io

import httpx
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.db.models import User
from tests.helpers import FakeClock, World


async def test_start_check_in_mark_end_report(
    world: World, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    session = await world.start(topic="Recursion", late_after_minutes=5, max_duration_minutes=60)
    assert session["status"] == "active"
    assert session["topic"] == "Recursion"
    assert session["teacher_id"] == "teacher"
    assert session["teacher_name"] == "Grace Hopper"
    assert session["started_by"] == "Grace Hopper"
    assert session["final_statistics"] is None
    assert session["started_at"].endswith("Z")
    assert len(session["started_at"]) == 24
    # the start's answer carries no records; its statistics count the roster (the approved
    # enrollments at the start), all absent; the roster itself comes with the session
    assert session["records"] == []
    roster = (await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)).json()
    assert {r["user_id"]: r["status"] for r in roster["records"]} == {
        "s1": "absent",
        "s2": "absent",
        "s3": "absent",
    }
    assert (
        session["statistics"]
        == roster["statistics"]
        == {
            "present": 0,
            "late": 0,
            "absent": 3,
            "excused": 0,
            "total": 3,
            "attendance_rate": 0.0,
        }
    )
    sid = session["id"]

    on_time = await world.check_in("s1", sid)
    assert on_time.status_code == 200
    assert on_time.json()["status"] == "present"
    assert on_time.json()["marked_by"] == "s1"

    clock.advance(minutes=6)
    late = await world.check_in("s2", sid)
    assert late.json()["status"] == "late"

    # repeat check-in: the record comes back unchanged
    again = await world.check_in("s1", sid)
    assert again.json() == on_time.json()

    # teacher marks s3 excused with remarks; a later check-in leaves it alone
    marked = await http.put(
        f"/api/sessions/{sid}/records/s3",
        json={"status": "excused", "remarks": "doctor's note"},
        headers=world.teacher.headers,
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["remarks"] == "doctor's note"
    assert (await world.check_in("s3", sid)).json()["status"] == "excused"

    active = await http.get(
        f"/api/courses/{world.course_id}/active-sessions", headers=world.users["s1"].headers
    )
    assert active.json() == {
        "course_id": "cs101",
        "activeSessions": [
            {
                "sessionId": sid,
                "teacherId": "teacher",
                "studentCount": 2,
                "startedAt": session["started_at"],
                "topic": "Recursion",
                "totalStudents": 3,
            }
        ],
    }

    # a student sees only its own record
    own = await http.get(f"/api/sessions/{sid}", headers=world.users["s2"].headers)
    assert [r["user_id"] for r in own.json()["records"]] == ["s2"]

    ended = await world.end(sid)
    assert ended.status_code == 200
    body = ended.json()
    assert body["status"] == "ended"
    assert body["ended_by"] == "Grace Hopper"
    expected = {"present": 2, "late": 1, "absent": 0, "excused": 1, "total": 3, "attendance_rate": 0.6667}
    assert body["final_statistics"] == expected
    assert (
        body["final_statistics"]["present"]
        + body["final_statistics"]["absent"]
        + body["final_statistics"]["excused"]
        == body["final_statistics"]["total"]
    )

    assert (await world.end(sid)).status_code == 409
    closed = await world.check_in("s1", sid)
    assert closed.status_code == 409
    assert "ended" in closed.json()["detail"]
    assert (
        await http.get(f"/api/courses/{world.course_id}/active-sessions", headers=world.teacher.headers)
    ).json()["activeSessions"] == []

    report = await http.get(f"/api/sessions/{sid}/report.csv", headers=world.teacher.headers)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["user_id"], r["name"], r["status"], r["remarks"]) for r in rows] == [
        ("s1", "Alice", "present", ""),
        ("s2", "Bilal", "late", ""),
        ("s3", "Chloe", "excused", "doctor's note"),
    ]
    assert rows[0]["checked_in_at"] == on_time.json()["marked_at"]
    assert rows[2]["checked_in_at"] == ""

    history = await http.get(f"/api/courses/{world.course_id}/sessions", headers=world.teacher.headers)
    assert [s["id"] for s in history.json()] == [sid]


async def test_student_approved_after_start_joins_roster_on_check_in(
    world: World, http: httpx.AsyncClient
) -> None:
    session = await world.start()
    world.user("late-joiner", "Lena")
    response = await http.put(
        f"/api/courses/{world.course_id}/enrollments/late-joiner",
        json={"status": "approved"},
        headers=world.teacher.headers,
    )
    assert response.status_code == 201
    checked = await world.check_in("late-joiner", session["id"])
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "present"
    stats = (await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)).json()[
        "statistics"
    ]
    assert stats["total"] == 4
    assert stats["present"] == 1


async def test_start_with_no_body_uses_defaults(world: World, http: httpx.AsyncClient) -> None:
    response = await http.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher.headers)
    assert response.status_code == 201
    assert response.json()["max_duration_minutes"] == 180
    assert response.json()["topic"] is None


async def test_csv_cells_cannot_become_formulas(world: World, http: httpx.AsyncClient) -> None:
    await http.put(
        f"/api/courses/{world.course_id}/enrollments/s1",
        json={"status": "approved", "name": "=HYPERLINK(1)"},
        headers=world.teacher.headers,
    )
    session = await world.start()
    report = await http.get(f"/api/sessions/{session['id']}/report.csv", headers=world.teacher.headers)
    assert "'=HYPERLINK(1)" in report.text


async def test_courses_list_and_enrollments(world: World, http: httpx.AsyncClient) -> None:
    mine = await http.get("/api/courses", headers=world.users["s1"].headers)
    assert [c["id"] for c in mine.json()] == ["cs101"]
    assert mine.json()[0]["my_role"] == "student"
    assert (await http.get("/api/courses", headers=world.users["pending"].headers)).json() == []
    everything = await http.get("/api/courses", headers=world.admin.headers)
    assert sorted(c["id"] for c in everything.json()) == ["cs101", "other"]
    roster = await http.get(f"/api/courses/{world.course_id}/enrollments", headers=world.teacher.headers)
    assert {(e["user_id"], e["status"]) for e in roster.json()} == {
        ("s1", "approved"),
        ("s2", "approved"),
        ("s3", "approved"),
        ("pending", "pending"),
        ("rejected", "rejected"),
    }
    # changing an enrollment answers 200 (created was 201)
    changed = await http.put(
        f"/api/courses/{world.course_id}/enrollments/pending",
        json={"status": "approved"},
        headers=world.teacher.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "approved"
    assert changed.json()["name"] == "Pat Pending"


async def test_user_row_keeps_stored_facts_the_token_lacks(
    world: World, http: httpx.AsyncClient, app: Application
) -> None:
    await http.put(
        f"/api/courses/{world.course_id}/enrollments/nameless",
        json={"status": "approved", "name": "Nadia Named", "email": "nadia@example.edu"},
        headers=world.teacher.headers,
    )
    token = world.tokens.mint("nameless", role="teacher", ttl_seconds=600)  # no name, no email claim
    me = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    await app.context.service.users.flush()  # the refresh from those claims is written
    roster = await http.get(f"/api/courses/{world.course_id}/enrollments", headers=world.teacher.headers)
    nadia = next(e for e in roster.json() if e["user_id"] == "nameless")
    assert (nadia["name"], nadia["email"]) == ("Nadia Named", "nadia@example.edu")
    async with app.context.database.read() as db:
        role = (await db.execute(select(User.role).where(User.id == "nameless"))).scalar_one()
    assert role == "teacher"  # the claim the token carries was written


async def test_course_creation_rules(world: World, http: httpx.AsyncClient) -> None:
    duplicate = await http.post(
        "/api/courses", json={"id": "cs101", "code": "X", "title": "Y"}, headers=world.teacher.headers
    )
    assert duplicate.status_code == 409
    by_student = await http.post(
        "/api/courses", json={"code": "X", "title": "Y"}, headers=world.users["s1"].headers
    )
    assert by_student.status_code == 403
    generated = await http.post("/api/courses", json={"code": "X", "title": "Y"}, headers=world.admin.headers)
    assert generated.status_code == 201
    assert len(generated.json()["id"]) == 32


async def test_bulk_enrollment_import(world: World, http: httpx.AsyncClient) -> None:
    url = f"/api/courses/{world.course_id}/enrollments"
    body = {
        "enrollments": [
            {"user_id": "n1", "status": "approved", "name": "Nina", "email": "nina@example.edu"},
            {"user_id": "n2", "status": "pending"},
            {"user_id": "pending", "status": "approved"},  # exists: changes, keeps its name
        ]
    }
    response = await http.put(url, json=body, headers=world.teacher.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "added": 2,
        "changed": 1,
        "unchanged": 0,
        "errors": [],
        "dry_run": False,
        "created": 2,  # the older names, kept for existing scripts
        "updated": 1,
    }
    roster = {e["user_id"]: e for e in (await http.get(url, headers=world.teacher.headers)).json()}
    assert (roster["n1"]["name"], roster["n1"]["email"], roster["n1"]["status"]) == (
        "Nina",
        "nina@example.edu",
        "approved",
    )
    assert (roster["n2"]["name"], roster["n2"]["status"]) == ("n2", "pending")
    assert (roster["pending"]["name"], roster["pending"]["status"]) == ("Pat Pending", "approved")
    # bad batches change nothing
    bad_batches: list[dict[str, list[dict[str, str]]]] = [
        {"enrollments": [{"user_id": "z", "status": "approved"}, {"user_id": "z", "status": "pending"}]},
        {"enrollments": [{"user_id": "teacher", "status": "approved"}]},
        {"enrollments": []},
        {"enrollments": [{"user_id": f"u{i}", "status": "approved"} for i in range(5001)]},
    ]
    for bad in bad_batches:
        refused = await http.put(url, json=bad, headers=world.teacher.headers)
        assert refused.status_code == 422, refused.text
    assert len((await http.get(url, headers=world.teacher.headers)).json()) == len(roster)
    assert (await http.put(url, json=body, headers=world.users["s1"].headers)).status_code == 403

"""Courses and rosters through the HTTP API: archive, join codes, CSV import and export, bulk PUT,
email invitations, and every refusal."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from attendance_live.app import Application
from attendance_live.db.models import Enrollment, JoinCode, RosterInvite, User
from attendance_live.service.joining import CODE_ALPHABET
from tests.helpers import FakeClock, World

CSV_TYPE = {"Content-Type": "text/csv"}


def csv_headers(world: World, who: str = "teacher") -> dict[str, str]:
    return {**world.users[who].headers, **CSV_TYPE}


async def roster(world: World) -> dict[str, str]:
    response = await world.http.get(
        f"/api/courses/{world.course_id}/enrollments", headers=world.teacher.headers
    )
    assert response.status_code == 200, response.text
    return {e["user_id"]: e["status"] for e in response.json()}


async def count_rows(app: Application, model: type[object]) -> int:
    async with app.context.service.database.read() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# ---------------------------------------------------------------- courses


async def test_edit_archive_unarchive(world: World, http: httpx.AsyncClient) -> None:
    url = f"/api/courses/{world.course_id}"
    edited = await http.patch(url, json={"title": "Computing I"}, headers=world.teacher.headers)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["code"], edited.json()["title"]) == ("CS101", "Computing I")
    assert (await http.patch(url, json={"title": "x"}, headers=world.users["s1"].headers)).status_code == 403
    assert (
        await http.patch(url, json={"title": "x"}, headers=world.users["other-teacher"].headers)
    ).status_code == 404

    archived = await http.post(f"{url}/archive", headers=world.teacher.headers)
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_at"] is not None
    # no new session; gone from the default list; students never see it
    refused = await http.post(f"{url}/sessions", headers=world.teacher.headers)
    assert refused.status_code == 409
    assert "unarchive" in refused.json()["detail"]
    listed = await http.get("/api/courses", headers=world.teacher.headers)
    assert world.course_id not in [c["id"] for c in listed.json()]
    with_archived = await http.get("/api/courses?include_archived=true", headers=world.teacher.headers)
    assert world.course_id in [c["id"] for c in with_archived.json()]
    student_list = await http.get("/api/courses?include_archived=true", headers=world.users["s1"].headers)
    assert world.course_id not in [c["id"] for c in student_list.json()]
    assert (await http.get(url, headers=world.users["s1"].headers)).status_code == 404
    # the teacher still reads its history
    assert (await http.get(f"{url}/report", headers=world.teacher.headers)).status_code == 200

    back = await http.post(f"{url}/unarchive", headers=world.teacher.headers)
    assert back.json()["archived_at"] is None
    assert (await http.get(url, headers=world.users["s1"].headers)).status_code == 200
    assert (await http.post(f"{url}/sessions", headers=world.teacher.headers)).status_code == 201


async def test_archive_refused_while_a_session_runs(world: World, http: httpx.AsyncClient) -> None:
    await world.start()
    refused = await http.post(f"/api/courses/{world.course_id}/archive", headers=world.teacher.headers)
    assert refused.status_code == 409
    assert "end it" in refused.json()["detail"]


# ------------------------------------------------------------- join codes


async def test_join_code_manual_then_approval(world: World, http: httpx.AsyncClient) -> None:
    created = await http.post(
        f"/api/courses/{world.course_id}/join-code",
        json={"approval": "manual"},
        headers=world.teacher.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["code"]) >= 8
    assert set(body["code"]) <= set(CODE_ALPHABET)
    assert body["url"] == f"/join/{body['code']}"
    assert (body["approval"], body["expires_at"]) == ("manual", None)

    outsider = world.users["outsider"]
    typed = body["code"].lower()[:4] + "-" + body["code"].lower()[4:]  # case and dashes ignored
    joined = await http.post("/api/join", json={"code": typed}, headers=outsider.headers)
    assert joined.status_code == 200, joined.text
    assert joined.json() == {
        "course_id": world.course_id,
        "course_code": "CS101",
        "course_title": "Computing",
        "user_id": "outsider",
        "status": "pending",
    }
    again = await http.post("/api/join", json={"code": body["code"]}, headers=outsider.headers)
    assert again.json()["status"] == "pending"
    assert (await roster(world))["outsider"] == "pending"
    # a pending student does not see the course's sessions yet
    assert (await http.get(f"/api/courses/{world.course_id}", headers=outsider.headers)).status_code == 403

    approved = await http.put(
        f"/api/courses/{world.course_id}/enrollments/outsider",
        json={"status": "approved"},
        headers=world.teacher.headers,
    )
    assert approved.status_code == 200
    assert (await http.get(f"/api/courses/{world.course_id}", headers=outsider.headers)).status_code == 200
    # joining again changes nothing
    assert (await http.post("/api/join", json={"code": body["code"]}, headers=outsider.headers)).json()[
        "status"
    ] == "approved"


async def test_join_code_auto_and_replaced(world: World, http: httpx.AsyncClient) -> None:
    url = f"/api/courses/{world.course_id}/join-code"
    first = (await http.post(url, json={"approval": "auto"}, headers=world.teacher.headers)).json()
    second = (await http.post(url, json={"approval": "auto"}, headers=world.teacher.headers)).json()
    assert first["code"] != second["code"]
    assert (await http.get(url, headers=world.teacher.headers)).json()["code"] == second["code"]
    old = await http.post("/api/join", json={"code": first["code"]}, headers=world.users["outsider"].headers)
    assert old.status_code == 403
    assert "revoked" in old.json()["detail"]
    new = await http.post("/api/join", json={"code": second["code"]}, headers=world.users["outsider"].headers)
    assert new.json()["status"] == "approved"


async def test_join_refusals(world: World, http: httpx.AsyncClient, clock: FakeClock) -> None:
    url = f"/api/courses/{world.course_id}/join-code"
    student = world.users["outsider"].headers
    expires = (clock() + timedelta(hours=1)).isoformat()
    code = (await http.post(url, json={"expires_at": expires}, headers=world.teacher.headers)).json()["code"]

    # a rejected student stays rejected
    rejected = await http.post("/api/join", json={"code": code}, headers=world.users["rejected"].headers)
    assert rejected.status_code == 403
    assert "declined" in rejected.json()["detail"]
    assert (await roster(world))["rejected"] == "rejected"

    # expired
    clock.advance(hours=2)
    expired = await http.post("/api/join", json={"code": code}, headers=student)
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]

    # revoked
    code = (await http.post(url, json={}, headers=world.teacher.headers)).json()["code"]
    assert (await http.delete(url, headers=world.teacher.headers)).status_code == 204
    revoked = await http.post("/api/join", json={"code": code}, headers=student)
    assert revoked.status_code == 403
    assert "revoked" in revoked.json()["detail"]
    assert (await http.get(url, headers=world.teacher.headers)).json() is None
    assert (await http.delete(url, headers=world.teacher.headers)).status_code == 404
    assert "outsider" not in await roster(world)

    # a past expiry, another course's manager, a student
    past = (clock() - timedelta(minutes=1)).isoformat()
    assert (await http.post(url, json={"expires_at": past}, headers=world.teacher.headers)).status_code == 422
    assert (await http.post(url, json={}, headers=world.users["other-teacher"].headers)).status_code == 404
    assert (await http.post(url, json={}, headers=world.users["s1"].headers)).status_code == 403
    # the teacher joining its own course
    code = (await http.post(url, json={}, headers=world.teacher.headers)).json()["code"]
    assert (
        await http.post("/api/join", json={"code": code}, headers=world.teacher.headers)
    ).status_code == 422


async def test_guessing_codes_is_rate_limited(world: World, http: httpx.AsyncClient) -> None:
    code = (
        await http.post(f"/api/courses/{world.course_id}/join-code", json={}, headers=world.teacher.headers)
    ).json()["code"]
    guesser = world.users["outsider"].headers
    answers = [
        (await http.post("/api/join", json={"code": f"ZZZZZZZZ{i:02d}"}, headers=guesser)).status_code
        for i in range(10)
    ]
    assert answers == [404] * 10
    limited = await http.post("/api/join", json={"code": code}, headers=guesser)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "try again in" in limited.json()["detail"]
    # per user: someone else is not held up
    other = await http.post("/api/join", json={"code": code}, headers=world.users["other-student"].headers)
    assert other.status_code == 200


# ------------------------------------------------------------------ import

GOOD_CSV = (
    "\ufeffUser ID;E-mail;Full Name;Status\r\n"
    "s1;alice@example.edu;Alice;approved\r\n"  # exists: unchanged status, new email -> changed
    "n1;nina@example.edu;Nina;\r\n"  # new, approved by default
    "n2;;Noor;pending\r\n"
    ";newbie@example.edu;Newbie;approved\r\n"  # email only, nobody has it: an invitation
    "pending;;;approved\r\n"  # exists: approved now
    "s2;;Bilal;approved\r\n"  # exists: unchanged
    "\r\n"
)


async def test_csv_import_dry_run_then_apply(world: World, http: httpx.AsyncClient, app: Application) -> None:
    url = f"/api/courses/{world.course_id}/enrollments/import"
    before = await roster(world)
    dry = await http.post(f"{url}?dry_run=true", content=GOOD_CSV.encode(), headers=csv_headers(world))
    assert dry.status_code == 200, dry.text
    assert dry.json() | {} == {
        "added": 3,
        "changed": 2,
        "unchanged": 1,
        "errors": [],
        "dry_run": True,
        "created": 3,
        "updated": 3,
    }
    assert await roster(world) == before
    assert await count_rows(app, RosterInvite) == 0

    applied = await http.post(url, content=GOOD_CSV.encode(), headers=csv_headers(world))
    assert applied.status_code == 200, applied.text
    assert (applied.json()["added"], applied.json()["dry_run"]) == (3, False)
    after = await roster(world)
    assert (after["n1"], after["n2"], after["pending"], after["s1"]) == (
        "approved",
        "pending",
        "approved",
        "approved",
    )
    invitations = await http.get(f"/api/courses/{world.course_id}/invitations", headers=world.teacher.headers)
    assert [(i["email"], i["name"], i["status"]) for i in invitations.json()] == [
        ("newbie@example.edu", "Newbie", "approved")
    ]
    # the same file again: nothing to do
    again = await http.post(url, content=GOOD_CSV.encode(), headers=csv_headers(world))
    assert (again.json()["added"], again.json()["changed"], again.json()["unchanged"]) == (0, 0, 6)


async def test_bad_rows_are_listed_and_nothing_is_written(
    world: World, http: httpx.AsyncClient, app: Application
) -> None:
    url = f"/api/courses/{world.course_id}/enrollments/import"
    body = (
        "user_id,email,name,status\n"
        "n1,nina@example.edu,Nina,approved\n"  # line 2: fine
        "bad id!,x@example.edu,X,approved\n"  # 3
        "n3,not-an-email,Y,approved\n"  # 4
        "n4,,Z,enrolled\n"  # 5
        ",,Nobody,approved\n"  # 6
        "teacher,,Grace,approved\n"  # 7
        "n1,,Nina again,pending\n"  # 8
        '"n5","multi\nline name",approved\n'  # 9-10: email cell holds a newline
        "n6,a@b.c,Six,approved,extra\n"  # 11
    )
    before_users = await count_rows(app, User)
    before = await roster(world)
    for dry in ("?dry_run=true", ""):
        refused = await http.post(url + dry, content=body.encode(), headers=csv_headers(world))
        expected = 200 if dry else 422
        assert refused.status_code == expected, refused.text
        answer = refused.json()
        assert [e["line"] for e in answer["errors"]] == [3, 4, 5, 6, 7, 8, 9, 11], answer["errors"]
        messages = {e["line"]: e["message"] for e in answer["errors"]}
        assert "user_id 'bad id!' is not valid" in messages[3]
        assert "not an email address" in messages[4]
        assert "'enrolled' is not one of pending, approved, rejected, removed" in messages[5]
        assert "neither a user_id nor an email" in messages[6]
        assert "teacher" in messages[7]
        assert "the same student as line 2" in messages[8]
        assert "header names 4 columns" in messages[11]
        if not dry:
            assert "nothing was imported" in answer["detail"]
            assert answer["added"] == 1  # the same answer shape as the dry run
    assert await roster(world) == before
    assert await count_rows(app, User) == before_users


async def test_import_limits_and_unreadable_files(
    world: World, http: httpx.AsyncClient, app: Application
) -> None:
    url = f"/api/courses/{world.course_id}/enrollments/import"
    big = "user_id\n" + "".join(f"u{i}\n" for i in range(10_001))
    refused = await http.post(url, content=big.encode(), headers=csv_headers(world))
    assert refused.status_code == 422
    assert refused.json()["errors"][-1] == {
        "line": 10_002,
        "message": "more than 10,000 rows; split the file and import each part",
    }
    assert await count_rows(app, Enrollment) == 6  # the world's: nothing written
    latin1 = "user_id,name\nu1,Zoë\n".encode("latin-1")
    not_utf8 = await http.post(url, content=latin1, headers=csv_headers(world))
    assert not_utf8.status_code == 422
    assert "CSV UTF-8" in not_utf8.json()["detail"]
    no_header = await http.post(url, content=b"s1,alice@example.edu\n", headers=csv_headers(world))
    assert no_header.status_code == 422
    assert "neither a user_id nor an email column" in no_header.json()["detail"]
    empty = await http.post(url, content=b"", headers=csv_headers(world))
    assert "empty" in empty.json()["detail"]
    # another course's manager: 404, and not a word about the file
    other = await http.post(url, content=b"garbage", headers=csv_headers(world, "other-teacher"))
    assert other.status_code == 404
    student = await http.post(url, content=GOOD_CSV.encode(), headers=csv_headers(world, "s1"))
    assert student.status_code == 403


async def test_ten_thousand_rows_in_one_import(world: World, http: httpx.AsyncClient) -> None:
    url = f"/api/courses/{world.course_id}/enrollments/import"
    body = "user_id,name\n" + "".join(f"u{i},Student {i}\n" for i in range(10_000))
    done = await http.post(url, content=body.encode(), headers=csv_headers(world))
    assert done.status_code == 200, done.text
    assert done.json()["added"] == 10_000
    assert len(await roster(world)) == 10_005


async def test_removed_status_and_export_round_trip(world: World, http: httpx.AsyncClient) -> None:
    url = f"/api/courses/{world.course_id}/enrollments"
    result = await http.put(
        url,
        json={
            "enrollments": [
                {"user_id": "s3", "status": "removed"},
                {"user_id": "formula", "name": '=HYPERLINK("http://x")', "status": "pending"},
                {"email": "Invitee@Example.edu"},
            ]
        },
        headers=world.teacher.headers,
    )
    assert result.status_code == 200, result.text
    assert (result.json()["added"], result.json()["changed"]) == (2, 1)
    assert "s3" not in await roster(world)
    exported = await http.get(
        f"/api/courses/{world.course_id}/enrollments.csv", headers=world.teacher.headers
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_id = {r["user_id"]: r for r in rows}
    assert by_id["formula"]["name"] == '\'=HYPERLINK("http://x")'
    assert by_id[""]["email"] == "invitee@example.edu"
    # the export imports back as it is, changing nothing
    back = await http.post(f"{url}/import?dry_run=true", content=exported.content, headers=csv_headers(world))
    assert (back.json()["added"], back.json()["errors"]) == (0, []), back.text
    assert (
        await http.get(
            f"/api/courses/{world.course_id}/enrollments.csv", headers=world.users["other-teacher"].headers
        )
    ).status_code == 404


async def test_bulk_put_refuses_everything_on_one_bad_item(world: World, http: httpx.AsyncClient) -> None:
    url = f"/api/courses/{world.course_id}/enrollments"
    before = await roster(world)
    refused = await http.put(
        url,
        json={"enrollments": [{"user_id": "ok1"}, {"user_id": "ok2", "status": "maybe"}, {"name": "nobody"}]},
        headers=world.teacher.headers,
    )
    assert refused.status_code == 422
    assert [e["line"] for e in refused.json()["errors"]] == [2, 3]
    assert await roster(world) == before


async def test_remove_enrollment_keeps_records(world: World, http: httpx.AsyncClient) -> None:
    session = await world.start()
    await world.check_in("s1", session["id"])
    await world.end(session["id"])
    removed = await http.delete(
        f"/api/courses/{world.course_id}/enrollments/s1", headers=world.teacher.headers
    )
    assert removed.status_code == 204
    assert "s1" not in await roster(world)
    again = await http.delete(f"/api/courses/{world.course_id}/enrollments/s1", headers=world.teacher.headers)
    assert again.status_code == 404
    report = await http.get(f"/api/courses/{world.course_id}/report", headers=world.teacher.headers)
    kept = {r["user_id"]: r for r in report.json()["students"]}
    assert (kept["s1"]["present"], kept["s1"]["sessions"]) == (1, 1)
    body = (await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)).json()
    assert "s1" in [r["user_id"] for r in body["records"]]


# ------------------------------------------------------------- invitations


async def test_email_invitation_links_at_first_sign_in(
    world: World, http: httpx.AsyncClient, app: Application
) -> None:
    url = f"/api/courses/{world.course_id}/enrollments/import"
    body = "email,name\nnew.person@example.edu,New Person\nshared@example.edu,Shared\n"
    assert (await http.post(url, content=body.encode(), headers=csv_headers(world))).status_code == 200
    service = app.context.service
    # two users already share an address: ambiguous, linked to nobody
    for uid in ("twin-a", "twin-b"):
        twin = world.tokens.mint(uid, name=uid, email="shared@example.edu", ttl_seconds=600)
        await http.get("/api/me", headers={"Authorization": f"Bearer {twin}"})
    newcomer = world.tokens.mint(
        "newcomer", name="New Person", email="New.Person@example.edu", ttl_seconds=600
    )
    assert (await http.get("/api/me", headers={"Authorization": f"Bearer {newcomer}"})).status_code == 200
    await service.users.flush()  # the background batch, and the link right after it
    after = await roster(world)
    assert after["newcomer"] == "approved"
    assert "twin-a" not in after
    assert "twin-b" not in after
    invitations = await http.get(f"/api/courses/{world.course_id}/invitations", headers=world.teacher.headers)
    assert [i["email"] for i in invitations.json()] == ["shared@example.edu"]
    # importing the shared address now is refused as ambiguous
    again = await http.post(url, content=b"email\nshared@example.edu\n", headers=csv_headers(world))
    assert again.status_code == 422
    assert "belongs to 2 users" in again.json()["errors"][0]["message"]
    async with service.database.read() as db:
        codes = await db.scalar(select(func.count()).select_from(JoinCode))
    assert codes == 0

"""Roster sync from the platform's NRPS (two pages), applied with the roster import's rules."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.auth.tokens import Identity
from attendance_live.db.models import Enrollment
from attendance_live.lti.service import lti_course_id, lti_user_id
from attendance_live.service.roster_rows import RosterRow
from tests.helpers import bearer
from tests.lti.conftest import launch
from tests.lti.platform import INSTRUCTOR, LEARNER, Platform


async def roster(app: Application, course_id: str) -> dict[str, str]:
    async with app.context.database.read() as db:
        rows = await db.execute(
            select(Enrollment.user_id, Enrollment.status).where(Enrollment.course_id == course_id)
        )
        return {user_id: status for user_id, status in rows.all()}


async def test_sync_on_launch_and_from_the_button_adds_removes_and_pages(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "Teacher", [INSTRUCTOR])
    platform.add(
        "ta", "Assistant", ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]
    )
    for sub in ("a", "b", "c"):
        platform.add(sub, f"Student {sub.upper()}", [LEARNER], email=f"{sub}@uni.example")
    answer = await launch(tool, platform, "t")
    token = re.search(r'data-token="([^"]+)"', answer.text)
    assert token is not None
    teacher = {"Authorization": f"Bearer {token.group(1)}"}
    await app.http.state.lti.settled()
    course_id = lti_course_id(platform.issuer, "ctx-1")
    uid = {sub: lti_user_id(platform.issuer, sub) for sub in ("a", "b", "c", "d")}
    assert await roster(app, course_id) == {uid["a"]: "approved", uid["b"]: "approved", uid["c"]: "approved"}
    assert platform.membership_pages_served == 3  # 5 members, 2 a page
    # A student who joined by other means (not from this LMS) is not the sync's business.
    service = app.context.service
    owner = Identity(lti_user_id(platform.issuer, "t"), "Teacher", None, "teacher")
    await service.import_roster(
        owner, course_id, [RosterRow(1, "local-1", None, "Local", "approved")], dry_run=False
    )

    state = await tool.get(f"/api/courses/{course_id}/lti", headers=teacher)
    assert state.status_code == 200, state.text
    assert state.json()["last_sync"]["added"] == 3
    assert state.json()["roster_sync"] is True

    del platform.people["b"]
    platform.people["c"].status = "Inactive"
    platform.add("d", "Student D", [LEARNER])
    synced = await tool.post(f"/api/courses/{course_id}/lti/sync", headers=teacher)
    assert synced.status_code == 200, synced.text
    summary = synced.json()
    assert (summary["members"], summary["added"], summary["removed"], summary["instructors"]) == (5, 1, 2, 2)
    assert await roster(app, course_id) == {uid["a"]: "approved", uid["d"]: "approved", "local-1": "approved"}
    # One platform token served both syncs (cached until it expires).
    assert platform.token_requests == 1
    assert platform.assertion_errors == []
    # A student cannot sync.
    student_answer = await launch(tool, platform, "a")
    student = re.search(r'data-token="([^"]+)"', student_answer.text)
    assert student is not None
    refused = await tool.post(
        f"/api/courses/{course_id}/lti/sync", headers={"Authorization": f"Bearer {student.group(1)}"}
    )
    assert refused.status_code == 403
    stranger = await tool.get(f"/api/courses/{course_id}/lti", headers=bearer("nobody"))
    assert stranger.status_code == 404


async def test_sync_while_the_platform_is_down_says_so_and_changes_nothing(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "Teacher", [INSTRUCTOR])
    platform.add("a", "A", [LEARNER])
    answer = await launch(tool, platform, "t")
    token = re.search(r'data-token="([^"]+)"', answer.text)
    assert token is not None
    await app.http.state.lti.settled()
    course_id = lti_course_id(platform.issuer, "ctx-1")
    before = await roster(app, course_id)
    platform.down()
    synced = await tool.post(
        f"/api/courses/{course_id}/lti/sync", headers={"Authorization": f"Bearer {token.group(1)}"}
    )
    assert synced.status_code == 502
    assert "503" in synced.json()["detail"]
    assert await roster(app, course_id) == before


async def test_a_course_not_from_an_lms_says_so(tool: httpx.AsyncClient) -> None:
    created = await tool.post(
        "/api/courses",
        json={"id": "plain-1", "code": "P1", "title": "Plain"},
        headers=bearer("t1", "teacher"),
    )
    assert created.status_code == 201, created.text
    state = await tool.get("/api/courses/plain-1/lti", headers=bearer("t1", "teacher"))
    assert state.status_code == 200
    assert state.json()["linked"] is False
    refused = await tool.post("/api/courses/plain-1/lti/sync", headers=bearer("t1", "teacher"))
    assert refused.status_code == 409
    assert "not created by a launch from an LMS" in refused.json()["detail"]

"""Co-managers from the LMS: a second Instructor and a TeachingAssistant launching into a context
manage its course beside the first Instructor (the owner); the NRPS sync adds and removes them."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.db.models import CourseManager, Enrollment
from attendance_live.lti.service import LIS, lti_course_id, lti_user_id, manager_role
from tests.lti.conftest import launch
from tests.lti.platform import INSTRUCTOR, LEARNER, Platform

TA = LIS + "membership/Instructor#TeachingAssistant"


def bearer_of(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    token = re.search(r'data-token="([^"]+)"', answer.text)
    assert token is not None, answer.text
    return {"Authorization": f"Bearer {token.group(1)}"}


async def co_managers(app: Application, course_id: str) -> dict[str, str]:
    async with app.context.database.read() as db:
        rows = await db.execute(
            select(CourseManager.user_id, CourseManager.role).where(CourseManager.course_id == course_id)
        )
        return {user_id: role for user_id, role in rows.all()}


def test_a_teaching_assistant_is_a_ta_and_any_other_manager_a_teacher() -> None:
    assert manager_role([INSTRUCTOR, TA]) == "ta"  # LIS: a sub-role comes with its principal role
    assert manager_role(["TeachingAssistant"]) == "ta"
    assert manager_role([INSTRUCTOR]) == "teacher"
    assert manager_role([LIS + "membership#Administrator"]) == "teacher"


async def test_a_second_instructor_and_a_ta_launch_in_as_co_managers(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("first", "Ada First", [INSTRUCTOR])
    platform.add("second", "Bea Second", [INSTRUCTOR], email="bea@uni.example")
    platform.add("assistant", "Cy Assistant", [INSTRUCTOR, TA])
    platform.add("learner", "Dee Learner", [LEARNER])
    course_id = lti_course_id(platform.issuer, "ctx-1")
    owner = bearer_of(await launch(tool, platform, "first"))
    await app.http.state.lti.settled()

    second = bearer_of(await launch(tool, platform, "second"))
    ta = bearer_of(await launch(tool, platform, "assistant"))
    await app.http.state.lti.settled()
    uid = {sub: lti_user_id(platform.issuer, sub) for sub in ("first", "second", "assistant", "learner")}
    assert await co_managers(app, course_id) == {uid["second"]: "teacher", uid["assistant"]: "ta"}
    for headers, role in ((owner, "owner"), (second, "teacher"), (ta, "ta")):
        course = (await tool.get(f"/api/courses/{course_id}", headers=headers)).json()
        assert (course["my_role"], course["manager_role"], course["teacher_id"]) == (
            "teacher",
            role,
            uid["first"],
        )
    # They manage it: the roster, a session, the LMS sync.
    roster = await tool.get(f"/api/courses/{course_id}/enrollments", headers=ta)
    assert [e["user_id"] for e in roster.json()] == [uid["learner"]]
    started = await tool.post(f"/api/courses/{course_id}/sessions", json={}, headers=second)
    assert started.status_code == 201, started.text
    assert started.json()["teacher_id"] == uid["first"]  # the first instructor stays the teacher
    synced = await tool.post(f"/api/courses/{course_id}/lti/sync", headers=ta)
    assert synced.status_code == 200, synced.text
    assert (
        synced.json()["instructors"],
        synced.json()["managers_added"],
        synced.json()["managers_removed"],
    ) == (
        3,
        0,
        0,
    )
    # A co-manager whom the LMS now calls a Learner launches in as a student.
    platform.people["assistant"].roles = [LEARNER]
    demoted = bearer_of(await launch(tool, platform, "assistant"))
    assert await co_managers(app, course_id) == {uid["second"]: "teacher"}
    course = (await tool.get(f"/api/courses/{course_id}", headers=demoted)).json()
    assert (course["my_role"], course["manager_role"]) == ("student", None)
    assert (await tool.get(f"/api/courses/{course_id}/enrollments", headers=demoted)).status_code == 403


async def test_the_roster_sync_adds_changes_and_removes_co_managers(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "Teacher", [INSTRUCTOR])
    platform.add("ta", "Assistant", [INSTRUCTOR, TA])
    platform.add("co", "Colleague", [INSTRUCTOR])
    platform.add("a", "Student A", [LEARNER])
    platform.add("b", "Student B", [LEARNER])
    course_id = lti_course_id(platform.issuer, "ctx-1")
    owner = bearer_of(await launch(tool, platform, "t"))
    await app.http.state.lti.settled()  # the first launch's sync
    uid = {sub: lti_user_id(platform.issuer, sub) for sub in ("t", "ta", "co", "a", "b")}
    assert await co_managers(app, course_id) == {uid["ta"]: "ta", uid["co"]: "teacher"}
    state = (await tool.get(f"/api/courses/{course_id}/lti", headers=owner)).json()
    assert state["last_sync"]["managers_added"] == 2
    # A co-manager added by hand (not from this LMS) is not the sync's business.
    local = await tool.put(f"/api/courses/{course_id}/managers/local-ta", json={"role": "ta"}, headers=owner)
    assert local.status_code == 201, local.text

    platform.people["co"].status = "Inactive"  # gone from the course's staff
    platform.people["ta"].roles = [INSTRUCTOR]  # promoted: a co-teacher now
    platform.people["b"].roles = [INSTRUCTOR, TA]  # a student who became a TA
    platform.people["a"].roles = [LEARNER]
    synced = await tool.post(f"/api/courses/{course_id}/lti/sync", headers=owner)
    assert synced.status_code == 200, synced.text
    summary = synced.json()
    assert (summary["managers_added"], summary["managers_removed"], summary["removed"]) == (2, 1, 0)
    assert await co_managers(app, course_id) == {uid["ta"]: "teacher", uid["b"]: "ta", "local-ta": "ta"}
    async with app.context.database.read() as db:
        enrolled = (
            await db.execute(select(Enrollment.user_id).where(Enrollment.course_id == course_id))
        ).all()
    assert [row[0] for row in enrolled] == [uid["a"]]  # the new TA is no student any more
    # The removed co-teacher manages nothing now; the one who became a TA does.
    co = bearer_of(await launch(tool, platform, "b"))
    assert (await tool.get(f"/api/courses/{course_id}/enrollments", headers=co)).status_code == 200

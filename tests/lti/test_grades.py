"""Grades to the platform (AGS): one line item, a score per student after each session's end,
retried after the platform was down, never blocking the end."""

from __future__ import annotations

import re

import httpx

from attendance_live.app import Application
from attendance_live.lti.service import lti_course_id
from tests.helpers import FakeClock
from tests.lti.conftest import launch
from tests.lti.platform import INSTRUCTOR, LEARNER, Platform


async def signed_in(tool: httpx.AsyncClient, platform: Platform, sub: str) -> dict[str, str]:
    answer = await launch(tool, platform, sub)
    found = re.search(r'data-token="([^"]+)"', answer.text)
    assert found is not None, answer.text
    return {"Authorization": f"Bearer {found.group(1)}"}


async def test_scores_after_each_session_end_and_retried_after_an_outage(
    app: Application, tool: httpx.AsyncClient, platform: Platform, clock: FakeClock
) -> None:
    grades = app.http.state.lti.grades
    await grades.stop()  # the test drives the passes itself
    platform.add("t", "Teacher", [INSTRUCTOR])
    platform.add("a", "Ann", [LEARNER])
    platform.add("b", "Ben", [LEARNER])
    teacher = await signed_in(tool, platform, "t")
    await app.http.state.lti.settled()  # the roster sync enrolled Ann and Ben
    ann = await signed_in(tool, platform, "a")
    course_id = lti_course_id(platform.issuer, "ctx-1")

    started = await tool.post(f"/api/courses/{course_id}/sessions", json={}, headers=teacher)
    assert started.status_code == 201, started.text
    session_id = started.json()["id"]
    assert (await tool.post(f"/api/sessions/{session_id}/check-in", headers=ann)).status_code == 200
    assert (await tool.post(f"/api/sessions/{session_id}/end", headers=teacher)).status_code == 200
    assert await grades.run_pass() == 1
    assert [(i["label"], i["scoreMaximum"], i["resourceId"]) for i in platform.lineitems] == [
        ("Attendance", 100, course_id)
    ]
    by_user = {s["userId"]: s for s in platform.scores}
    assert by_user["a"]["scoreGiven"] == 100
    assert by_user["b"]["scoreGiven"] == 0
    assert {(s["activityProgress"], s["gradingProgress"]) for s in platform.scores} == {
        ("Submitted", "FullyGraded")
    }
    assert all(s["lineitem"] == platform.lineitems[0]["id"] for s in platform.scores)

    # The platform is down when the next session ends: the end goes through, the post waits.
    platform.down()
    started = await tool.post(f"/api/courses/{course_id}/sessions", json={}, headers=teacher)
    session_id = started.json()["id"]
    assert (await tool.post(f"/api/sessions/{session_id}/end", headers=teacher)).status_code == 200
    assert await grades.run_pass() == 0
    state = (await tool.get(f"/api/courses/{course_id}/lti", headers=teacher)).json()["grade_posts"]
    assert state["pending"] == 1
    assert state["done"] == 1
    assert "503" in state["last_error"]
    assert await grades.run_pass() == 0  # not due again yet
    platform.down(False)
    clock.advance(seconds=31)
    posted = len(platform.scores)
    assert await grades.run_pass() == 1
    latest = {s["userId"]: s for s in platform.scores[posted:]}
    assert latest["a"]["scoreGiven"] == 50  # one of two sessions
    assert latest["b"]["scoreGiven"] == 0
    assert len(platform.lineitems) == 1  # found again, never created twice
    state = (await tool.get(f"/api/courses/{course_id}/lti", headers=teacher)).json()["grade_posts"]
    assert (state["pending"], state["done"], state["failed"]) == (0, 2, 0)
    assert platform.token_requests == 2  # NRPS's token, then one for AGS, reused across passes

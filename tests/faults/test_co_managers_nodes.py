"""Two nodes, Redis and PostgreSQL: a co-manager added or removed through one node gains or loses
the course on the other node's sockets and in its members cache, in stream order."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Deployment
from tests.faults.live import COURSE, TEACHER_HEADERS, LiveClient, api, end_session, start_session
from tests.helpers import Recorder, bearer, token

pytestmark = pytest.mark.faults

TA = "demo-ta"


async def test_a_co_manager_follows_the_course_on_the_other_node_and_stops_at_removal(
    cluster: Deployment,
) -> None:
    a, b = await cluster.start("a", "b")
    ta_on_b = Recorder("ta-on-b")  # subscribes to nothing: its rights alone move it
    student_on_b = LiveClient("student-on-b", "demo-student-4")
    try:
        await ta_on_b.connect(b.url, token(TA))
        await student_on_b.connect(b.url)
        async with api(a.url, b.url) as (via_a, via_b):
            # Not a manager yet: the other node's members cache says no.
            refused = await ta_on_b.call("subscribeToCourse", {"course_id": COURSE}, timeout=10)
            assert refused["code"] == "forbidden"
            added = await via_a.put(
                f"/api/courses/{COURSE}/managers/{TA}", json={"role": "ta"}, headers=TEACHER_HEADERS
            )
            assert added.status_code == 201, added.text
            first = await start_session(via_a, "with the TA")
            started = await ta_on_b.next("courseSessionStarted", timeout=10)
            assert (started["session_id"], started["teacher_id"]) == (first["id"], "demo-teacher")
            listed = await via_b.get(f"/api/courses/{COURSE}/enrollments", headers=bearer(TA))
            assert listed.status_code == 200, listed.text
            await end_session(via_a, first["id"])

            removed = await via_a.delete(f"/api/courses/{COURSE}/managers/{TA}", headers=TEACHER_HEADERS)
            assert removed.status_code == 204, removed.text
            mark = student_on_b.mark()
            second = await start_session(via_a, "without the TA")
            await end_session(via_a, second["id"])
            await student_on_b.next(
                "courseSessionEnded", since=mark, where=lambda d: d["session_id"] == second["id"]
            )
            # Node b delivered the removal before the second start: the TA saw none of it, and
            # its cache refuses the TA now.
            again = await ta_on_b.call("subscribeToCourse", {"course_id": COURSE}, timeout=10)
            assert again["code"] == "forbidden"
            assert [d["session_id"] for n, d in ta_on_b.events if n == "courseSessionStarted"] == [
                first["id"]
            ]
            assert ta_on_b.count("courseSessionEnded") == 1
            gone = await via_b.get(f"/api/courses/{COURSE}/enrollments", headers=bearer(TA))
            assert gone.status_code == 404
    finally:
        await ta_on_b.close()
        await student_on_b.close()

"""Check-ins on two nodes sharing PostgreSQL: the same code everywhere, one change per student.

Codes are derived from the session's secret and the clock, so both nodes give
the same code with nothing shared but the row; a student checking in through
both nodes at once changes its record once and leaves one audit row.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.faults.conftest import Deployment
from tests.faults.live import COURSE, STUDENTS, TEACHER_HEADERS, api, get_session
from tests.helpers import bearer

pytestmark = pytest.mark.faults


async def current_code(http: httpx.AsyncClient, session_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/sessions/{session_id}/check-in-code", headers=TEACHER_HEADERS)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_two_nodes_agree_on_the_code_and_count_each_student_once(cluster: Deployment) -> None:
    a, b = await cluster.start("a", "b")
    async with api(a.url, b.url) as (via_a, via_b):
        started = await via_a.post(
            f"/api/courses/{COURSE}/sessions",
            json={"check_in_mode": "code", "code_period_seconds": 60},
            headers=TEACHER_HEADERS,
        )
        assert started.status_code == 201, started.text
        sid = started.json()["id"]
        while True:  # the two reads may straddle a rotation: then read both again
            on_a, on_b = await asyncio.gather(current_code(via_a, sid), current_code(via_b, sid))
            if on_a["expires_at"] == on_b["expires_at"]:
                break
        assert on_a == on_b

        async def check_in(http: httpx.AsyncClient, student: str) -> httpx.Response:
            return await http.post(
                f"/api/sessions/{sid}/check-in", json={"code": on_a["code"]}, headers=bearer(student)
            )

        # Every student through both nodes at once, twice over.
        racing = [check_in(http, s) for s in STUDENTS for http in (via_a, via_b, via_a, via_b)]
        responses = await asyncio.gather(*racing)
        assert [r.status_code for r in responses] == [200] * len(racing), [r.text for r in responses]
        assert {r.json()["status"] for r in responses} == {"present"}

        body = await get_session(via_b, sid)
        assert body["statistics"]["present"] == len(STUDENTS)
        audits = [r["audit"] for r in body["records"]]
        assert all(audit is not None and audit["how"] == "check_in" for audit in audits)
        assert sorted(audit["by"] for audit in audits) == sorted(STUDENTS)
        # All from one address: every check-in after the first is flagged, none refused.
        assert sum(audit["same_address_as"] is not None for audit in audits) == len(STUDENTS) - 1

        wrong = await via_b.post(
            f"/api/sessions/{sid}/check-in", json={"code": "AAAAAA"}, headers=bearer(STUDENTS[0])
        )
        assert wrong.status_code == 403
        assert wrong.json()["reason"] == "code_invalid"

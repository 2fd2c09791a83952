"""Bad input gets a clear 4xx and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import World


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "", "title": "T"}, "code"),
        ({"code": "C"}, "title"),
        ({"code": "C", "title": "T", "id": "has space"}, "id"),
        ({"code": "C", "title": "T", "id": "x" * 129}, "id"),
        ({"code": "C", "title": "T", "surprise": 1}, "surprise"),
        ({"code": ["C"], "title": "T"}, "code"),
    ],
)
async def test_course_body_errors_name_the_field(
    body: dict[str, object], field: str, world: World, http: httpx.AsyncClient
) -> None:
    response = await http.post("/api/courses", json=body, headers=world.teacher.headers)
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert response.json()["errors"]


async def test_not_json_is_400(world: World, http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/courses",
        content=b"{nope",
        headers={**world.teacher.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"max_duration_minutes": 0},
        {"max_duration_minutes": 100000},
        {"late_after_minutes": -1},
        {"late_after_minutes": 30, "max_duration_minutes": 20},
        {"topic": "t" * 201},
        {"max_duration_minutes": "long"},
    ],
)
async def test_session_start_errors(body: dict[str, object], world: World, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"/api/courses/{world.course_id}/sessions", json=body, headers=world.teacher.headers
    )
    assert response.status_code == 422, response.text
    active = await http.get(f"/api/courses/{world.course_id}/active-sessions", headers=world.teacher.headers)
    assert active.json()["activeSessions"] == []


async def test_record_and_enrollment_status_checked(world: World, http: httpx.AsyncClient) -> None:
    session = await world.start()
    bad_record = await http.put(
        f"/api/sessions/{session['id']}/records/s1", json={"status": "asleep"}, headers=world.teacher.headers
    )
    assert bad_record.status_code == 422
    assert "status" in bad_record.json()["detail"]
    not_on_roster = await http.put(
        f"/api/sessions/{session['id']}/records/outsider",
        json={"status": "present"},
        headers=world.teacher.headers,
    )
    assert not_on_roster.status_code == 404
    assert "roster" in not_on_roster.json()["detail"]
    bad_enrollment = await http.put(
        "/api/courses/cs101/enrollments/s9", json={"status": "maybe"}, headers=world.teacher.headers
    )
    assert bad_enrollment.status_code == 422
    teacher_as_student = await http.put(
        "/api/courses/cs101/enrollments/teacher", json={"status": "approved"}, headers=world.teacher.headers
    )
    assert teacher_as_student.status_code == 422


async def test_the_documented_validation_example(world: World, http: httpx.AsyncClient) -> None:
    # docs/api.md, "Errors": the example's request and answer.
    response = await http.post(
        "/api/courses", json={"code": "", "title": "T", "extra": 1}, headers=world.teacher.headers
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Invalid request: code: String should have at least 1 character; "
        "extra: Extra inputs are not permitted",
        "errors": [
            {
                "loc": ["body", "code"],
                "msg": "String should have at least 1 character",
                "type": "string_too_short",
            },
            {"loc": ["body", "extra"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"},
        ],
    }


async def test_unknown_endpoint_and_method(http: httpx.AsyncClient) -> None:
    missing = await http.get("/api/nothing-here")
    assert missing.status_code == 404
    assert "/docs" in missing.json()["detail"]
    wrong_method = await http.delete("/api/courses")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, POST"


async def test_a_wrong_method_on_an_existing_route_is_405_with_allow(
    world: World, http: httpx.AsyncClient
) -> None:
    # GET was answered by the dashboard's catch-all (404) before issue 23.
    session = await world.start()
    for method, path, allow in (
        ("GET", f"/api/sessions/{session['id']}/check-in", "POST"),
        ("GET", f"/api/sessions/{session['id']}/end", "POST"),
        ("GET", "/api/sessions/no-such-session/end", "POST"),
        ("PUT", f"/api/sessions/{session['id']}/end", "POST"),
        ("DELETE", f"/api/courses/{world.course_id}/sessions", "GET, POST"),
        ("POST", f"/api/sessions/{session['id']}", "GET"),
    ):
        response = await http.request(method, path, headers=world.teacher.headers)
        assert response.status_code == 405, (method, path, response.text)
        assert response.headers["allow"] == allow
        assert response.json()["detail"] == f"{method} is not allowed on {path}; see /docs"
    # Unknown paths stay 404.
    assert (await http.get(f"/api/sessions/{session['id']}/nothing")).status_code == 404
    # Nothing happened to the session.
    body = (await http.get(f"/api/sessions/{session['id']}", headers=world.teacher.headers)).json()
    assert body["status"] == "active"


async def test_openapi_and_docs(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    paths = set(spec["paths"])
    for path in (
        "/api/courses",
        "/api/courses/{course_id}",
        "/api/courses/{course_id}/enrollments/{user_id}",
        "/api/courses/{course_id}/enrollments",
        "/api/courses/{course_id}/sessions",
        "/api/courses/{course_id}/active-sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/check-in",
        "/api/sessions/{session_id}/records/{user_id}",
        "/api/sessions/{session_id}/end",
        "/api/sessions/{session_id}/report.csv",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    assert (await http.get("/docs")).status_code == 200


async def test_health(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok", "demo": False}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "redis": "disabled"}


async def test_metrics_are_prometheus_text_without_ids(world: World, http: httpx.AsyncClient) -> None:
    session = await world.start()
    await world.check_in("s1", session["id"])
    await http.get("/api/courses/nope", headers=world.users["s1"].headers)
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'attendance_http_request_seconds_count{method="POST",route="/api/sessions/{session_id}/check-in"'
        in text
    )
    assert 'attendance_errors_total{kind="http_404"} 1.0' in text
    assert "attendance_redis_up -1.0" in text
    assert 'attendance_db_transaction_seconds_count{kind="write"}' in text
    assert session["id"] not in text
    assert "cs101" not in text
    # The soak's leak watch (bench/soak.py): gauges read at scrape time.
    gauges = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("attendance_"))
    assert float(gauges["attendance_asyncio_tasks"]) >= 1  # the scrape's own task at least
    assert float(gauges["attendance_timer_entries"]) >= 0
    assert float(gauges["attendance_timer_heap_entries"]) >= float(gauges["attendance_timer_entries"])
    assert response.headers.get("x-request-id")


async def test_request_id_is_echoed(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"

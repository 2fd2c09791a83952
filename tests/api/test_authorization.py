"""Who may call what: every endpoint against every kind of caller.

Expected statuses follow the contract: 401 for a missing or bad token (with
``WWW-Authenticate: Bearer``); 404 for a course or session the caller has no
relation to; 403 for a related caller without the right.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from attendance_live.auth.tokens import TokenService
from tests.helpers import World

CALLERS = (
    "none",
    "expired",
    "wrong-signature",
    "alg-none",
    "other-student",
    "pending",
    "rejected",
    "s1",
    "other-teacher",
    "teacher",
    "admin",
)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def headers_for(world: World, caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    if caller == "expired":
        token = world.tokens.mint("s1", name="Alice", ttl_seconds=-30)
    elif caller == "wrong-signature":
        token = TokenService("another-secret-" + "y" * 40).mint("teacher", role="teacher")
    elif caller == "alg-none":
        claims = {"sub": "teacher", "role": "admin", "exp": int(time.time()) + 600}
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    else:
        return world.users[caller].headers
    return {"Authorization": f"Bearer {token}"}


BAD_TOKENS = {"none": 401, "expired": 401, "wrong-signature": 401, "alg-none": 401}
OUTSIDERS = {"other-student": 404, "rejected": 404, "other-teacher": 404}
MANAGERS_ONLY = {**BAD_TOKENS, **OUTSIDERS, "pending": 403, "s1": 403, "teacher": 200, "admin": 200}
MEMBERS = {**BAD_TOKENS, **OUTSIDERS, "pending": 403, "s1": 200, "teacher": 200, "admin": 200}

Request = Callable[[httpx.AsyncClient, World, dict[str, str]], Awaitable[httpx.Response]]


async def _session(world: World) -> str:
    return str((await world.start())["id"])


async def create_course(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post("/api/courses", json={"code": "N", "title": "New"}, headers=hd)


async def list_courses(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses", headers=hd)


async def get_course(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101", headers=hd)


async def put_enrollment(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    response = await h.put("/api/courses/cs101/enrollments/newbie", json={"status": "pending"}, headers=hd)
    return response


async def put_enrollments(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    body = {"enrollments": [{"user_id": "bulk-1", "status": "pending"}]}
    return await h.put("/api/courses/cs101/enrollments", json=body, headers=hd)


async def list_enrollments(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/enrollments", headers=hd)


async def start_session(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post("/api/courses/cs101/sessions", json={}, headers=hd)


async def list_sessions(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/sessions", headers=hd)


async def active_sessions(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/active-sessions", headers=hd)


async def get_session(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get(f"/api/sessions/{await _session(w)}", headers=hd)


async def check_in(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post(f"/api/sessions/{await _session(w)}/check-in", headers=hd)


async def mark_record(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.put(f"/api/sessions/{await _session(w)}/records/s2", json={"status": "late"}, headers=hd)


async def end_session(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post(f"/api/sessions/{await _session(w)}/end", headers=hd)


async def report(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get(f"/api/sessions/{await _session(w)}/report.csv", headers=hd)


async def course_report(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/report", headers=hd)


async def course_report_csv(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/report.csv", headers=hd)


async def course_xapi(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/report.xapi.json", headers=hd)


async def session_xapi(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get(f"/api/sessions/{await _session(w)}/report.xapi.json", headers=hd)


async def server_config(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/config", headers=hd)


async def me(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/me", headers=hd)


ANYONE = {**BAD_TOKENS, **{c: 200 for c in CALLERS if c not in BAD_TOKENS}}


async def patch_course(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.patch("/api/courses/cs101", json={"title": "Computing"}, headers=hd)


async def unarchive(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post("/api/courses/cs101/unarchive", headers=hd)


async def create_join_code(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post("/api/courses/cs101/join-code", json={"approval": "manual"}, headers=hd)


async def get_join_code(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/join-code", headers=hd)


async def remove_enrollment(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    # re-added each time by the teacher, so that every manager removes an existing one
    await h.put(
        "/api/courses/cs101/enrollments/leaver", json={"status": "approved"}, headers=w.teacher.headers
    )
    return await h.delete("/api/courses/cs101/enrollments/leaver", headers=hd)


async def import_csv(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post(
        "/api/courses/cs101/enrollments/import?dry_run=true",
        content=b"user_id\nnewbie\n",
        headers={**hd, "Content-Type": "text/csv"},
    )


async def export_csv(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/enrollments.csv", headers=hd)


async def invitations(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.get("/api/courses/cs101/invitations", headers=hd)


MATRIX: dict[str, tuple[Request, dict[str, int]]] = {
    "POST /api/courses": (
        create_course,
        {
            **BAD_TOKENS,
            "other-student": 403,
            "pending": 403,
            "rejected": 403,
            "s1": 403,
            "other-teacher": 201,
            "teacher": 201,
            "admin": 201,
        },
    ),
    "GET /api/courses": (list_courses, ANYONE),
    "GET /api/me": (me, ANYONE),
    "GET /api/courses/{id}": (get_course, MEMBERS),
    # the teacher creates it (201), then the admin changes it (200)
    "PUT /api/courses/{id}/enrollments/{user}": (put_enrollment, {**MANAGERS_ONLY, "teacher": 201}),
    "PUT /api/courses/{id}/enrollments": (put_enrollments, MANAGERS_ONLY),
    "GET /api/courses/{id}/enrollments": (list_enrollments, MANAGERS_ONLY),
    "POST /api/courses/{id}/sessions": (start_session, {**MANAGERS_ONLY, "teacher": 201, "admin": 201}),
    "GET /api/courses/{id}/sessions": (list_sessions, MANAGERS_ONLY),
    "GET /api/courses/{id}/active-sessions": (active_sessions, MEMBERS),
    "GET /api/sessions/{id}": (get_session, MEMBERS),
    "POST /api/sessions/{id}/check-in": (check_in, {**MEMBERS, "teacher": 403, "admin": 403}),
    "PUT /api/sessions/{id}/records/{user}": (mark_record, MANAGERS_ONLY),
    "POST /api/sessions/{id}/end": (end_session, MANAGERS_ONLY),
    "GET /api/sessions/{id}/report.csv": (report, MANAGERS_ONLY),
    "GET /api/sessions/{id}/report.xapi.json": (session_xapi, MANAGERS_ONLY),
    "GET /api/courses/{id}/report": (course_report, MEMBERS),
    "GET /api/courses/{id}/report.csv": (course_report_csv, MEMBERS),
    "GET /api/courses/{id}/report.xapi.json": (course_xapi, MANAGERS_ONLY),
    # The sign-in page reads it before anyone has a token (a bad token is not even looked at).
    "GET /api/config": (server_config, dict.fromkeys(CALLERS, 200)),
    "PATCH /api/courses/{id}": (patch_course, MANAGERS_ONLY),
    "POST /api/courses/{id}/unarchive": (unarchive, MANAGERS_ONLY),
    "POST /api/courses/{id}/join-code": (create_join_code, {**MANAGERS_ONLY, "teacher": 201, "admin": 201}),
    "GET /api/courses/{id}/join-code": (get_join_code, MANAGERS_ONLY),
    "DELETE /api/courses/{id}/enrollments/{user}": (
        remove_enrollment,
        {**MANAGERS_ONLY, "teacher": 204, "admin": 204},
    ),
    "POST /api/courses/{id}/enrollments/import": (import_csv, MANAGERS_ONLY),
    "GET /api/courses/{id}/enrollments.csv": (export_csv, MANAGERS_ONLY),
    "GET /api/courses/{id}/invitations": (invitations, MANAGERS_ONLY),
}


@pytest.mark.parametrize("endpoint", list(MATRIX))
async def test_authorization_matrix(endpoint: str, world: World, http: httpx.AsyncClient) -> None:
    call, expected = MATRIX[endpoint]
    assert set(expected) == set(CALLERS), "every caller must have an expectation"
    wrong = []
    for caller in CALLERS:
        response = await call(http, world, headers_for(world, caller))
        if response.status_code != expected[caller]:
            wrong.append(
                f"{caller}: {response.status_code} (expected {expected[caller]}) {response.text[:120]}"
            )
            continue
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body["detail"], str), body
            assert body["detail"], body
        if response.status_code == 401:
            assert response.headers.get("www-authenticate") == "Bearer"
    assert not wrong, f"{endpoint}:\n" + "\n".join(wrong)


async def test_unknown_course_and_session_look_like_forbidden_ones(
    world: World, http: httpx.AsyncClient
) -> None:
    hidden = await http.get("/api/courses/other", headers=world.users["s1"].headers)
    missing = await http.get("/api/courses/nope", headers=world.users["s1"].headers)
    assert hidden.status_code == missing.status_code == 404
    missing_session = await http.get("/api/sessions/nope", headers=world.users["s1"].headers)
    assert missing_session.status_code == 404


async def test_token_messages_name_the_fix(world: World, http: httpx.AsyncClient) -> None:
    expired = await http.get("/api/me", headers=headers_for(world, "expired"))
    assert expired.json()["detail"].startswith("Token expired")
    missing = await http.get("/api/me")
    assert "Authorization: Bearer" in missing.json()["detail"]

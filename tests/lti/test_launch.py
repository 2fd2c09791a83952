"""Launches from a local LTI platform (a real HTTP service): who lands where, signed in as whom,
and every refusal (a page with a reference id, a log line, never the token)."""

from __future__ import annotations

import logging
import re
import time

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.db.lti_models import LtiLogin
from attendance_live.db.models import Course, Enrollment
from attendance_live.lti.registry import register_platform
from attendance_live.lti.service import lti_course_id, lti_user_id
from tests.auth.provider import SigningKey
from tests.lti.conftest import launch, login
from tests.lti.platform import INSTRUCTOR, LEARNER, Platform


def landing(response: httpx.Response) -> tuple[str, str]:
    """The session token and the dashboard path a landing page carries."""
    found = re.search(r'data-token="([^"]+)" data-target="([^"]+)"', response.text)
    assert found is not None, response.text
    return found.group(1), found.group(2)


def refusal(response: httpx.Response) -> str:
    found = re.search(r'<p id="lti-error">([^<]+)</p>', response.text)
    assert found is not None, response.text
    assert re.search(r'<code id="lti-reference">[0-9a-f]{8}</code>', response.text)
    return found.group(1)


async def test_instructor_creates_the_course_and_a_learner_joins_it_signed_in(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("teacher-7", "Ada Teacher", [INSTRUCTOR], email="ada@uni.example")
    platform.add("student-9", "Bo Student", [LEARNER], email="bo@uni.example")
    answer = await launch(tool, platform, "teacher-7")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    token, target = landing(answer)
    course_id = lti_course_id(platform.issuer, "ctx-1")
    assert target == f"/courses/{course_id}"
    # The session token is the server's own and signs the instructor in as the course's teacher.
    course = await tool.get(f"/api/courses/{course_id}", headers={"Authorization": f"Bearer {token}"})
    assert course.status_code == 200, course.text
    assert course.json()["title"] == "Biology 101"
    assert course.json()["code"] == "BIO101"
    assert course.json()["my_role"] == "teacher"
    assert course.json()["teacher_id"] == lti_user_id(platform.issuer, "teacher-7")
    await app.http.state.lti.settled()  # the first instructor launch synced the roster

    platform.context["title"] = "Biology 101 (spring)"
    again = await launch(tool, platform, "teacher-7")
    token, _ = landing(again)
    course = await tool.get(f"/api/courses/{course_id}", headers={"Authorization": f"Bearer {token}"})
    assert course.json()["title"] == "Biology 101 (spring)"  # kept in sync with the context
    async with app.context.database.read() as db:
        assert len((await db.execute(Course.__table__.select())).all()) == 1

    answer = await launch(tool, platform, "student-9")
    token, target = landing(answer)
    mine = await tool.get(f"/api/courses/{course_id}", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200, mine.text
    assert mine.json()["my_role"] == "student"
    async with app.context.database.read() as db:
        enrollment = await db.get(Enrollment, (course_id, lti_user_id(platform.issuer, "student-9")))
    assert enrollment is not None
    assert enrollment.status == "approved"


async def test_user_ids_are_scoped_by_issuer() -> None:
    assert lti_user_id("https://a.example", "1") != lti_user_id("https://b.example", "1")
    assert lti_user_id("https://a.example", "1").startswith("lti-")


async def test_a_learner_before_any_instructor_and_an_unknown_role_are_refused(
    tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("s", "S", [LEARNER])
    platform.add("m", "Mentor", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"])
    answer = await launch(tool, platform, "s")
    assert answer.status_code == 409
    assert "its instructor opens the tool once" in refusal(answer)
    answer = await launch(tool, platform, "m")
    assert answer.status_code == 403
    assert "neither Instructor" in refusal(answer)


async def test_a_replayed_launch_is_refused(
    app: Application, tool: httpx.AsyncClient, platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    platform.add("t", "T", [INSTRUCTOR])
    fields, state = await login(tool, platform, "t")
    first = await tool.post("/lti/launch", data=fields, headers={"Cookie": f"lti_state={state}"})
    assert first.status_code == 200
    with caplog.at_level(logging.WARNING, logger="attendance_live.api.lti"):
        replay = await tool.post("/lti/launch", data=fields, headers={"Cookie": f"lti_state={state}"})
    assert replay.status_code == 401
    assert "already used" in refusal(replay)
    reference = re.search(r'lti-reference">([0-9a-f]+)<', replay.text)
    assert reference is not None
    lines = [r.getMessage() for r in caplog.records if reference.group(1) in r.getMessage()]
    assert len(lines) == 1
    assert "already used" in lines[0]
    assert fields["id_token"] not in caplog.text  # never the token
    async with app.context.database.read() as db:
        row = await db.get(LtiLogin, state)
    assert row is not None
    assert row.used_at is not None


async def test_a_launch_without_the_browsers_cookie_or_with_another_state_is_refused(
    tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "T", [INSTRUCTOR])
    fields, _state = await login(tool, platform, "t")
    answer = await tool.post("/lti/launch", data=fields)
    assert answer.status_code == 401
    assert "cookie" in refusal(answer)
    answer = await tool.post("/lti/launch", data=fields, headers={"Cookie": "lti_state=someone-else"})
    assert answer.status_code == 401
    assert "not the one this browser started" in refusal(answer)


@pytest.mark.parametrize(
    ("override", "status", "reason"),
    [
        ({"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "deployment-x"}, 403, "deployment-x"),
        ({"aud": "someone-else", "azp": None}, 403, "not registered"),
        ({"aud": ["tool-client-1", "other"], "azp": "other"}, 403, "not registered"),
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 400}, 401, "expired"),
        ({"iat": int(time.time()) - 600, "exp": int(time.time()) + 600}, 401, "more than 5 minutes ago"),
        (
            {"https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingRequest"},
            400,
            "not supported",
        ),
        ({"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"}, 400, "version"),
    ],
    ids=[
        "wrong-deployment",
        "wrong-audience",
        "azp-not-ours",
        "expired",
        "too-old",
        "message-type",
        "version",
    ],
)
async def test_refused_launches(
    tool: httpx.AsyncClient, platform: Platform, override: dict[str, object], status: int, reason: str
) -> None:
    platform.add("t", "T", [INSTRUCTOR])
    platform.overrides = override
    answer = await launch(tool, platform, "t")
    assert answer.status_code == status, answer.text
    assert reason in refusal(answer)
    assert "Traceback" not in answer.text


async def test_a_token_signed_by_an_unregistered_key_is_refused(
    tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "T", [INSTRUCTOR])
    fields, state = await login(tool, platform, "t")
    nonce = platform.last_nonce
    forged = platform.id_token("t", nonce, key=SigningKey.new("RS256", "attacker-key"))
    answer = await tool.post(
        "/lti/launch", data={**fields, "id_token": forged}, headers={"Cookie": f"lti_state={state}"}
    )
    assert answer.status_code == 401
    assert "does not list" in refusal(answer)
    # Signed by a key of the right kid but not the platform's: the signature fails.
    forged = platform.id_token("t", nonce, key=SigningKey.new("RS256", platform.key.kid))
    answer = await tool.post(
        "/lti/launch", data={**fields, "id_token": forged}, headers={"Cookie": f"lti_state={state}"}
    )
    assert answer.status_code == 401
    assert "not valid" in refusal(answer)
    # The state was not used up by the forgeries: the real launch still goes through.
    answer = await tool.post("/lti/launch", data=fields, headers={"Cookie": f"lti_state={state}"})
    assert answer.status_code == 200, answer.text


async def test_login_from_an_unregistered_platform_or_deployment_is_refused(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "T", [INSTRUCTOR])
    params = {**platform.login_params("t"), "iss": "https://stranger.example"}
    answer = await tool.get("/lti/login", params=params)
    assert answer.status_code == 403
    assert "is not registered" in refusal(answer)
    params = {**platform.login_params("t"), "lti_deployment_id": "elsewhere"}
    answer = await tool.post("/lti/login", data=params)
    assert answer.status_code == 403
    assert "elsewhere" in refusal(answer)
    # A second deployment registered later is accepted.
    await register_platform(
        app.context.database,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=["elsewhere"],
        auth_url=f"{platform.url}/auth",
        token_url=f"{platform.url}/token",
        jwks_url=f"{platform.url}/jwks",
    )
    answer = await tool.post("/lti/login", data=params)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(f"{platform.url}/auth?")
    cookie = answer.headers["set-cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "Max-Age=300" in cookie


async def test_tool_jwks_is_rsa(tool: httpx.AsyncClient) -> None:
    keys = (await tool.get("/lti/jwks.json")).json()["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("RSA", "RS256", "sig")]
    assert "d" not in keys[0]
    assert "p" not in keys[0]


async def test_the_platform_may_frame_the_launch_and_then_the_dashboard(
    tool: httpx.AsyncClient, platform: Platform
) -> None:
    platform.add("t", "T", [INSTRUCTOR])
    answer = await launch(tool, platform, "t")
    assert f"frame-ancestors {platform.url}" in answer.headers["content-security-policy"]
    platform_cookie = re.search(r"lti_platform=(\d+);", ", ".join(answer.headers.get_list("set-cookie")))
    assert platform_cookie is not None
    _, target = landing(answer)
    framed = await tool.get(target, headers={"Cookie": f"lti_platform={platform_cookie.group(1)}"})
    assert f"frame-ancestors {platform.url}" in framed.headers["content-security-policy"]
    assert "x-frame-options" not in framed.headers  # it would deny what frame-ancestors allows
    alone = await tool.get(target)
    assert "frame-ancestors 'none'" in alone.headers["content-security-policy"]
    assert alone.headers["x-frame-options"] == "DENY"


async def test_a_launch_replayed_on_another_node_is_refused(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    """Another node: its own launcher (its own JWKS cache, nothing in memory shared), the same database."""
    from attendance_live.lti.launch import Launcher, LaunchError

    platform.add("t", "T", [INSTRUCTOR])
    fields, state = await login(tool, platform, "t")
    first = await tool.post("/lti/launch", data=fields, headers={"Cookie": f"lti_state={state}"})
    assert first.status_code == 200
    other = Launcher(app.context.database, redirect_uri=platform.redirect_uri, clock=app.http.state.lti.clock)
    try:
        with pytest.raises(LaunchError, match="already used"):
            await other.launch(fields["id_token"], fields["state"], state)
    finally:
        await other.close()


async def test_an_unexpected_failure_is_a_page_with_a_reference_not_a_traceback(
    app: Application, tool: httpx.AsyncClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.add("t", "T", [INSTRUCTOR])

    async def broken(launch: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(app.http.state.lti, "land", broken)
    answer = await launch(tool, platform, "t")
    assert answer.status_code == 503
    assert "could not be completed (RuntimeError)" in refusal(answer)
    assert "Traceback" not in answer.text
    assert "database went away" not in answer.text


async def test_the_tool_config_endpoint(tool: httpx.AsyncClient, app: Application) -> None:
    config = (await tool.get("/lti/config")).json()
    base = app.http.state.lti.public_url
    assert config["oidc_initiation_url"] == f"{base}/lti/login"
    assert config["target_link_uri"] == f"{base}/lti/launch"
    assert config["public_jwk_url"] == f"{base}/lti/jwks.json"


async def test_frame_ancestors_set_per_platform(
    app: Application, tool: httpx.AsyncClient, platform: Platform
) -> None:
    await register_platform(
        app.context.database,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=[platform.deployment_id],
        auth_url=f"{platform.url}/auth",
        token_url=f"{platform.url}/token",
        jwks_url=f"{platform.url}/jwks",
        frame_ancestors="https://lms.uni.example https://*.uni.example",
    )
    platform.add("t", "T", [INSTRUCTOR])
    answer = await launch(tool, platform, "t")
    assert "frame-ancestors https://*.uni.example https://lms.uni.example;" in (
        answer.headers["content-security-policy"] + ";"
    )

"""The server's own session tokens: keys in the database, rotation, the public JWKS, other issuers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from attendance_live.app import Application, create_app
from attendance_live.auth.session_keys import HEADER_PREFIX, KID_PREFIX, rotate_keys
from attendance_live.auth.tokens import Identity
from attendance_live.cli import main
from attendance_live.config import Settings
from attendance_live.db.engine import Database
from tests.auth.provider import SigningKey
from tests.helpers import Recorder

TEACHER = Identity(user_id="lti-teacher", name="Ada Lovelace", email="ada@uni.example", role="teacher")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def second(app: Application, settings: Settings) -> AsyncIterator[Application]:
    """A second application on the same database (another node), with its own lifespan."""
    node = create_app(settings)
    async with node.http.router.lifespan_context(node.http):
        yield node


@pytest.fixture
async def other_node(second: Application) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=second.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://node-b") as client:
        yield client


async def test_a_session_token_works_over_http_and_the_socket(
    app: Application, http: httpx.AsyncClient, live_url: str
) -> None:
    token = await app.context.sessions.mint_session_token(TEACHER, "teacher", 600)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA"
    assert header["kid"].startswith(KID_PREFIX)
    assert claims["iss"] == claims["aud"] == app.context.settings.issuer_url == "http://127.0.0.1:4002"
    assert claims["exp"] - claims["iat"] == 600

    me = await http.get("/api/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert (me.json()["id"], me.json()["name"], me.json()["role"]) == (
        "lti-teacher",
        "Ada Lovelace",
        "teacher",
    )
    created = await http.post(
        "/api/courses", json={"id": "lti1", "code": "LTI1", "title": "From the LMS"}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text  # the role claim counts as a provider's would

    socket = Recorder("teacher")
    try:
        await socket.connect(live_url, token)
        assert await socket.call("subscribeToCourse", {"course_id": "lti1"}) == {
            "course_id": "lti1",
            "activeSessions": [],
        }
        fresh = await app.context.sessions.mint_session_token(TEACHER, "teacher", 1200)
        refreshed = await socket.call("refreshToken", {"token": fresh})
        assert refreshed["expires_at"].startswith(
            datetime.fromtimestamp(jwt.decode(fresh, options={"verify_signature": False})["exp"], UTC)
            .isoformat(timespec="milliseconds")
            .removesuffix("+00:00")
        )
    finally:
        await socket.close()


async def test_the_jwks_is_public_keys_only_and_verifies_the_tokens(
    app: Application, http: httpx.AsyncClient
) -> None:
    token = await app.context.sessions.mint_session_token(TEACHER, "student", 60)
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    body = response.json()
    assert len(body["keys"]) == 1
    for key in body["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # no "d": nothing private
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    # Anyone can verify a session token with what is published, as an LMS or another service would.
    public = jwt.PyJWKSet.from_dict(body)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, public.key, algorithms=["EdDSA"], audience="http://127.0.0.1:4002")
    assert claims["sub"] == "lti-teacher"


async def test_rotation_keeps_old_tokens_until_they_expire_and_signs_new_ones_with_the_new_key(
    app: Application,
    http: httpx.AsyncClient,
    second: Application,
    other_node: httpx.AsyncClient,
    settings: Settings,
) -> None:
    sessions = app.context.sessions
    old_token = await sessions.mint_session_token(TEACHER, "teacher", 300)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    # The other node verifies what this one signed: the key is in the shared database.
    assert (await other_node.get("/api/me", headers=bearer(old_token))).status_code == 200

    database = Database(settings.database_url)
    try:
        # Rotated a little earlier: the new key is past its activation delay and signs.
        earlier = datetime.now(UTC) - timedelta(seconds=sessions.activation_delay + 1)
        new_kid = await rotate_keys(database, max_ttl_seconds=settings.session_token_max_seconds, now=earlier)
    finally:
        await database.dispose()
    assert new_kid != old_kid
    await sessions.reload()  # as the next mint after RELOAD_INTERVAL would
    # The other node read the table just now; it reads it again on an unknown kid once the
    # interval has passed (no waiting in a test: the interval is made 0).
    second.context.sessions.reload_interval = 0
    new_token = await sessions.mint_session_token(TEACHER, "teacher", 300)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid

    for node in (http, other_node):  # the other node learns the new kid from the database
        assert (await node.get("/api/me", headers=bearer(old_token))).status_code == 200
        assert (await node.get("/api/me", headers=bearer(new_token))).status_code == 200
    published = {key["kid"] for key in (await other_node.get("/.well-known/jwks.json")).json()["keys"]}
    assert published == {old_kid, new_kid}


async def test_a_rotated_out_key_stops_verifying_once_its_tokens_could_have_expired(
    app: Application, http: httpx.AsyncClient, settings: Settings
) -> None:
    old_token = await app.context.sessions.mint_session_token(TEACHER, "teacher", 300)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    database = Database(settings.database_url)
    try:
        # Rotated long enough ago that every token of the old key has expired.
        await rotate_keys(
            database,
            max_ttl_seconds=settings.session_token_max_seconds,
            now=datetime.now(UTC) - timedelta(seconds=settings.session_token_max_seconds + 1),
        )
    finally:
        await database.dispose()
    await app.context.sessions.reload()
    refused = await http.get("/api/me", headers=bearer(old_token))
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("Invalid token")
    published = {key["kid"] for key in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    assert old_kid not in published
    assert len(published) == 1


async def test_a_session_token_is_never_accepted_from_another_issuer(
    app: Application, http: httpx.AsyncClient
) -> None:
    token = await app.context.sessions.mint_session_token(TEACHER, "admin", 300)
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    private = app.context.sessions._signing  # the test plays an attacker holding the key itself
    assert private is not None
    for changed in ({"iss": "https://evil.example"}, {"aud": "https://evil.example"}, {"iss": None}):
        forged_claims = {k: v for k, v in {**claims, **changed}.items() if v is not None}
        forged = jwt.encode(forged_claims, private.private, algorithm="EdDSA", headers={"kid": kid})
        refused = await http.get("/api/me", headers=bearer(forged))
        assert refused.status_code == 401, changed

    # Our issuer and kid, but another key: refused.
    stranger = SigningKey.new("EdDSA", kid=kid)
    assert (await http.get("/api/me", headers=bearer(stranger.sign(claims)))).status_code == 401
    # A kid of ours that does not exist: refused (after one look at the database).
    assert (
        await http.get("/api/me", headers=bearer(stranger.sign(claims, kid=KID_PREFIX + "x")))
    ).status_code == 401
    # Our key itself, but a header that does not start the way ours do (keys in another order):
    # it goes to the configured source, which pins HS256, and is refused there.
    odd = jwt.encode(claims, private.private, algorithm="EdDSA", headers={"kid": kid}, sort_headers=False)
    assert not odd.startswith(HEADER_PREFIX)
    assert (await http.get("/api/me", headers=bearer(odd))).status_code == 401


async def test_expired_session_tokens_and_overlong_lifetimes_are_refused(
    app: Application, http: httpx.AsyncClient, settings: Settings
) -> None:
    sessions = app.context.sessions
    with pytest.raises(ValueError, match="SESSION_TOKEN_MAX_SECONDS"):
        await sessions.mint_session_token(TEACHER, "teacher", settings.session_token_max_seconds + 1)
    with pytest.raises(ValueError, match="more than 0"):
        await sessions.mint_session_token(TEACHER, "teacher", timedelta(0))
    token = await sessions.mint_session_token(TEACHER, "teacher", 300)
    claims = jwt.decode(token, options={"verify_signature": False})
    signing = sessions._signing
    assert signing is not None
    expired = jwt.encode(
        {**claims, "iat": int(time.time()) - 600, "exp": int(time.time()) - 60},
        signing.private,
        algorithm="EdDSA",
        headers={"kid": signing.kid},
    )
    refused = await http.get("/api/me", headers=bearer(expired))
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("Token expired")


def test_keys_rotate_and_list_on_the_command_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    # An operator migrates first (on PostgreSQL nothing migrates by itself; SQLite's serve does).
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    assert "no keys yet" in capsys.readouterr().out
    assert main(["keys", "rotate"]) == 0
    first = capsys.readouterr().out
    assert first.startswith(f"new signing key {KID_PREFIX}")
    assert main(["keys", "rotate"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[1].endswith("signing")
    assert "verifies until" in lines[2]
    assert "PRIVATE" not in first + "\n".join(lines)


async def test_a_new_key_is_published_at_once_and_signs_after_its_activation_delay(
    app: Application, http: httpx.AsyncClient, settings: Settings
) -> None:
    sessions = app.context.sessions
    database = Database(settings.database_url)
    try:
        earlier = datetime.now(UTC) - timedelta(seconds=sessions.activation_delay + 1)
        ripe_kid = await rotate_keys(
            database, max_ttl_seconds=settings.session_token_max_seconds, now=earlier
        )
        await sessions.reload()
        assert jwt.get_unverified_header(await sessions.mint_session_token(TEACHER, "teacher", 60))[
            "kid"
        ] == (ripe_kid)
        new_kid = await rotate_keys(database, max_ttl_seconds=settings.session_token_max_seconds)
    finally:
        await database.dispose()
    await sessions.reload()
    published = {key["kid"] for key in (await http.get("/.well-known/jwks.json")).json()["keys"]}
    assert {ripe_kid, new_kid} <= published  # other verifiers may learn it before it is used
    token = await sessions.mint_session_token(TEACHER, "teacher", 60)
    assert jwt.get_unverified_header(token)["kid"] == ripe_kid


async def test_session_tokens_expire_and_refresh_on_the_socket_as_any_token_does(
    app: Application, live_url: str
) -> None:
    sessions = app.context.sessions
    lapses = Recorder("session-token")
    keeps = Recorder("mixed")
    try:
        await lapses.connect(live_url, await sessions.mint_session_token(TEACHER, "teacher", 2))
        # A socket opened with the configured source's token takes a session token as its refresh,
        # and the other way round: one user, whichever source vouches for them.
        await keeps.connect(live_url, app.context.tokens.mint(TEACHER.user_id, role="teacher", ttl_seconds=2))
        fresh = await sessions.mint_session_token(TEACHER, "teacher", 600)
        assert "expires_at" in await keeps.call("refreshToken", {"token": fresh})
        someone_else = Identity(user_id="other", name="Other", email=None, role="student")
        refused = await keeps.call(
            "refreshToken", {"token": await sessions.mint_session_token(someone_else, "student", 600)}
        )
        assert refused["code"] == "forbidden"

        expired = await lapses.next("tokenExpired", timeout=10)
        assert expired["expired_at"].endswith("Z")
        assert keeps.count("tokenExpired") == 0  # its deadline moved with the session token
    finally:
        await lapses.close()
        await keeps.close()

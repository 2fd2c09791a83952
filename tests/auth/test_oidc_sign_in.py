"""Sign-in settings: ``OIDC_*`` and ``PUBLIC_URL``, ``GET /api/config``, keys from discovery, the CSP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from attendance_live.app import Application, create_app
from attendance_live.auth.tokens import Identity
from attendance_live.config import ConfigError, Settings, load_settings
from attendance_live.db.engine import Database
from attendance_live.db.migrate import upgrade
from tests.auth.provider import Provider, SigningKey, bearer, keycloak_claims


@pytest.fixture
def settings(database_url: str, tmp_path: Path, provider: Provider) -> Settings:
    return load_settings(
        database_url=database_url,
        secret_file=tmp_path / "secret",
        oidc_issuer=provider.issuer,
        oidc_client_id="attendance-dashboard",
        oidc_audience="https://attendance.uni.example/api",
        oidc_display_name="University login",
        jwt_role_claim="realm_access.roles",
        public_url="https://attendance.uni.example/",
    )


async def test_the_config_says_where_to_sign_in_without_a_token(
    http: httpx.AsyncClient, provider: Provider
) -> None:
    response = await http.get("/api/config")
    assert response.status_code == 200
    body = response.json()
    assert body["sign_in"] == {
        "mode": "oidc",
        "issuer": provider.issuer,
        "client_id": "attendance-dashboard",
        "scopes": "openid profile email",
        "audience": "https://attendance.uni.example/api",
        "display_name": "University login",
        "token_form": False,
        "demo": False,
        "help": None,
    }
    assert body["public_url"] == "https://attendance.uni.example"
    assert "secret" not in response.text.lower()


async def test_the_providers_keys_come_from_its_discovery_document(
    app: Application, http: httpx.AsyncClient, provider: Provider, signing_key: SigningKey
) -> None:
    jwks = app.context.tokens.jwks
    assert jwks is not None
    await jwks.refresh()
    claims = {
        **keycloak_claims(provider.issuer, roles=["teacher"], sub="kc-t"),
        "aud": "https://attendance.uni.example/api",
    }
    me = await http.get("/api/me", headers=bearer(signing_key.sign(claims)))
    assert me.status_code == 200, me.text
    assert (me.json()["id"], me.json()["role"]) == ("kc-t", "teacher")
    # Another issuer or another audience: refused (JWT_ISSUER and JWT_AUDIENCE follow OIDC_*).
    for wrong in ({"iss": "https://elsewhere.example"}, {"aud": "someone-else"}):
        refused = await http.get("/api/me", headers=bearer(signing_key.sign({**claims, **wrong})))
        assert refused.status_code == 401, wrong
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["oidc"] == f"ok (OIDC_ISSUER {provider.issuer})"


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[Application, httpx.AsyncClient]]:
    """The app on a migrated database, with its lifespan, and an HTTP client."""
    database = Database(settings.database_url)
    await upgrade(database)
    await database.dispose()
    application = create_app(settings)
    async with application.http.router.lifespan_context(application.http):
        transport = httpx.ASGITransport(app=application.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield application, client


async def test_the_servers_own_session_tokens_work_beside_the_providers(
    app: Application, http: httpx.AsyncClient
) -> None:
    user = Identity(user_id="lti-learner", name="Lin Learner", email=None, role="student")
    token = await app.context.sessions.mint_session_token(user, "student", 300)
    me = await http.get("/api/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == "lti-learner"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == claims["aud"] == "https://attendance.uni.example"


async def test_a_provider_down_at_start_makes_the_node_unready_and_says_which(
    settings: Settings, provider: Provider
) -> None:
    provider.down()
    async with served(settings) as (application, http):
        jwks = application.context.tokens.jwks
        assert jwks is not None
        await jwks.refresh()  # whatever the start-up fetch got to, one fetch has failed now
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["oidc"].startswith("down: HTTPError: HTTP Error 503")
    assert ready.json()["oidc"].endswith(f"(OIDC_ISSUER {provider.issuer})")


async def test_the_dashboard_may_connect_to_the_provider_and_nowhere_else(
    http: httpx.AsyncClient, provider: Provider
) -> None:
    policy = (await http.get("/api/config")).headers["content-security-policy"]
    assert f"connect-src 'self' {provider.issuer};" in policy


@pytest.mark.parametrize(
    ("values", "variable", "says"),
    [
        ({"oidc_issuer": "https://idp.example"}, "OIDC_CLIENT_ID", "is not set, and OIDC_ISSUER is"),
        (
            {"oidc_issuer": "https://idp.example", "oidc_client_id": "x", "jwt_algorithm": "HS256"},
            "JWT_ALGORITHM",
            "OIDC_ISSUER is set",
        ),
        ({"oidc_issuer": "http://idp.example", "oidc_client_id": "x"}, "OIDC_ISSUER", "needs https"),
        ({"oidc_issuer": "idp.example", "oidc_client_id": "x"}, "OIDC_ISSUER", "not an http(s) issuer URL"),
        ({"oidc_scopes": "profile email"}, "OIDC_SCOPES", "does not include openid"),
        ({"public_url": "https://a.example/attendance"}, "PUBLIC_URL", "has a path"),
        ({"public_url": "attendance.example"}, "PUBLIC_URL", "is not an http(s) URL"),
        ({"session_token_max_seconds": 10}, "SESSION_TOKEN_MAX_SECONDS", "greater than or equal to 60"),
    ],
)
def test_bad_sign_in_settings_name_the_variable_and_the_fix(
    values: dict[str, object], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**values)
    assert caught.value.variable == variable
    assert says in str(caught.value)


def test_without_oidc_and_demo_the_config_explains_how_to_set_sign_in_up() -> None:
    settings = load_settings()
    assert settings.oidc_issuer is None
    assert settings.jwt_algorithm == "HS256"
    assert settings.issuer_url == "http://127.0.0.1:4002"


async def test_unconfigured_sign_in_says_how_to_configure_it(tmp_path: Path, database_url: str) -> None:
    settings = Settings(access_token_secret="x" * 40, database_url=database_url, secret_file=tmp_path / "s")
    async with served(settings) as (_, http):
        sign_in = (await http.get("/api/config")).json()["sign_in"]
    assert sign_in["mode"] == "unconfigured"
    assert sign_in["token_form"] is False
    assert "OIDC_ISSUER" in sign_in["help"]
    assert "OIDC_CLIENT_ID" in sign_in["help"]
    assert "/signed-in" in sign_in["help"]


async def test_the_developer_option_offers_the_token_box(tmp_path: Path, database_url: str) -> None:
    settings = Settings(
        access_token_secret="x" * 40,
        database_url=database_url,
        secret_file=tmp_path / "s",
        sign_in_token_form=True,
    )
    async with served(settings) as (_, http):
        sign_in = (await http.get("/api/config")).json()["sign_in"]
    assert (sign_in["mode"], sign_in["token_form"], sign_in["help"]) == ("token", True, None)

"""The whole server verifying a provider's tokens: HTTP, Socket.IO, readiness, the CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.cli import main
from attendance_live.config import Settings
from tests.auth.provider import Provider, SigningKey, bearer, keycloak_claims
from tests.helpers import Recorder

ISSUER = "https://login.uni.example/realms/uni"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, provider: Provider) -> Settings:
    return Settings(
        database_url=database_url,
        secret_file=tmp_path / "secret",
        jwt_algorithm="RS256",
        jwks_url=provider.url,
        jwt_issuer=ISSUER,
        jwt_audience=["attendance-live"],
        jwt_role_claim="realm_access.roles",
        jwt_name_claim="name",
    )


async def test_keycloak_tokens_work_over_http_and_socket(
    app: Application,
    http: httpx.AsyncClient,
    live_url: str,
    signing_key: SigningKey,
) -> None:
    teacher = signing_key.sign(keycloak_claims(ISSUER, roles=["teacher"], sub="kc-teacher"))
    me = await http.get("/api/me", headers=bearer(teacher))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == "kc-teacher"
    assert me.json()["name"] == "Grace Hopper"
    created = await http.post(
        "/api/courses", json={"id": "kc101", "code": "KC101", "title": "Keycloak"}, headers=bearer(teacher)
    )
    assert created.status_code == 201, created.text  # the realm role "teacher" may create courses

    student = signing_key.sign(keycloak_claims(ISSUER, roles=[], sub="kc-student"))
    refused = await http.post("/api/courses", json={"code": "X", "title": "X"}, headers=bearer(student))
    assert refused.status_code == 403

    socket = Recorder("teacher")
    try:
        await socket.connect(live_url, teacher)
        data = await socket.call("subscribeToCourse", {"course_id": "kc101"})
        assert data == {"course_id": "kc101", "activeSessions": []}
    finally:
        await socket.close()

    foreign = SigningKey.new("RS256", kid="kc-rsa-1").sign(keycloak_claims(ISSUER, roles=["admin"]))
    assert (await http.get("/api/me", headers=bearer(foreign))).status_code == 401  # same kid, wrong key


async def test_readiness_reports_a_provider_that_is_down(
    app: Application,
    http: httpx.AsyncClient,
    provider: Provider,
    signing_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jwks = app.context.tokens.jwks
    assert jwks is not None
    await jwks.refresh()  # whatever the start-up fetch did, the set is loaded now
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()["jwks"]) == (200, "ok")

    provider.down()
    with caplog.at_level(logging.WARNING, logger="attendance_live.auth.jwks"):
        await jwks.refresh()
    assert any("could not be fetched" in r.getMessage() for r in caplog.records)
    ready = await http.get("/readyz")
    assert ready.status_code == 200  # cached keys still verify: degraded, not unready
    assert ready.json()["status"] == "ready"
    assert ready.json()["jwks"].startswith("degraded: provider unreachable")
    token = signing_key.sign(keycloak_claims(ISSUER, roles=[], sub="during-outage"))
    assert (await http.get("/api/me", headers=bearer(token))).json()["id"] == "during-outage"


@pytest.mark.parametrize("command", [["token", "someone"], ["demo"]])
def test_the_cli_cannot_mint_in_asymmetric_mode(
    command: list[str],
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("JWKS_URL", provider.url)
    monkeypatch.delenv("ACCESS_TOKEN_SECRET", raising=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "JWT_ALGORITHM is RS256" in err
    assert "identity provider" in err
    assert not (tmp_path / ".attendance-live-secret").exists()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"JWT_ALGORITHM": "RS256"}, "JWKS_URL"),
        ({"JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY": "/nonexistent/idp.pem"}, "JWT_PUBLIC_KEY"),
    ],
)
def test_serve_stops_at_start_on_a_bad_key_source(
    env: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"Configuration error: {variable} ")

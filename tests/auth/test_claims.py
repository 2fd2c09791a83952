"""Verification rules and claim mapping, and the settings that choose a key source."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from attendance_live.auth.keys import build_token_service, load_public_key
from attendance_live.auth.tokens import ClaimNames, TokenError, TokenService
from attendance_live.config import ConfigError, load_settings
from tests.auth.provider import ENTRA_APP, ENTRA_TENANT, SigningKey, entra_claims, keycloak_claims

SECRET = "k" * 40


def pem_service(key: SigningKey, **kw: Any) -> TokenService:
    return TokenService(
        algorithm=key.algorithm, public_key=load_public_key(key.public_pem(), key.algorithm), **kw
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.new("RS256", kid="rsa-1")


# ------------------------------------------------------------------ claim mapping


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["offline_access", "student", "teacher"], "teacher"),
        (["teacher", "admin"], "admin"),
        (["uma_authorization"], "student"),
        ([], "student"),
    ],
)
def test_keycloak_realm_roles_give_the_highest_role(
    rsa_key: SigningKey, roles: list[str], expected: str
) -> None:
    issuer = "https://login.uni.example/realms/uni"
    service = pem_service(
        rsa_key,
        issuer=issuer,
        audience=["attendance-live"],
        claims=ClaimNames(role="realm_access.roles"),
    )
    claims = keycloak_claims(issuer, roles=roles, sub="f3c1e0a2")
    identity = service.verify(rsa_key.sign(claims))
    assert identity.user_id == "f3c1e0a2"
    assert identity.name == "Grace Hopper"
    assert identity.email == "grace@uni.example"
    assert identity.role == expected


def test_entra_claims_map_by_configuration(rsa_key: SigningKey) -> None:
    service = pem_service(
        rsa_key,
        issuer=f"https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0",
        audience=[ENTRA_APP],
        claims=ClaimNames(user_id="oid", email="preferred_username", role="roles"),
    )
    identity = service.verify(rsa_key.sign(entra_claims(roles=["teacher"], oid="0e2c-oid")))
    assert (identity.user_id, identity.name, identity.email, identity.role) == (
        "0e2c-oid",
        "Ada Lovelace",
        "ada@uni.example",
        "teacher",
    )
    # No roles claim at all (a user with no app role): a student.
    assert service.verify(rsa_key.sign(entra_claims(roles=None))).role == "student"


def test_a_claim_named_with_dots_is_found_by_name_first() -> None:
    """Auth0 requires namespaced custom claims, which are URLs full of dots."""
    service = TokenService(SECRET, claims=ClaimNames(role="https://attendance.uni.example/roles"))
    claims = {"sub": "auth0|42", "exp": time.time() + 60, "https://attendance.uni.example/roles": ["admin"]}
    identity = service.verify(jwt.encode(claims, SECRET, algorithm="HS256"))
    assert (identity.user_id, identity.role) == ("auth0|42", "admin")


def test_a_configured_user_id_claim_has_no_fallback() -> None:
    service = TokenService(SECRET, claims=ClaimNames(user_id="oid"))
    with pytest.raises(TokenError, match="Invalid token") as caught:
        service.verify(jwt.encode({"sub": "x", "exp": time.time() + 60}, SECRET, algorithm="HS256"))
    assert caught.value.reason == "no oid claim"


# -------------------------------------------------------------- what is refused


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["9999999999", True, None, [1]])
def test_time_claims_must_be_numbers(name: str, value: object) -> None:
    service = TokenService(SECRET)
    claims: dict[str, Any] = {"sub": "x", "exp": int(time.time()) + 60, name: value}
    with pytest.raises(TokenError, match="Invalid token"):
        service.verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_issuer_and_audience_are_required_and_checked(rsa_key: SigningKey) -> None:
    issuer = "https://login.uni.example/realms/uni"
    service = pem_service(rsa_key, issuer=issuer, audience=["attendance-live"])
    good = keycloak_claims(issuer, roles=[])
    assert service.verify(rsa_key.sign(good)).user_id == good["sub"]
    for change in (
        {"iss": "https://login.uni.example/realms/other"},
        {"aud": "another-app"},
        {"iss": None},
        {"aud": None},
    ):
        claims = {k: v for k, v in {**good, **change}.items() if v is not None}
        with pytest.raises(TokenError, match="Invalid token"):
            service.verify(rsa_key.sign(claims))


def test_without_a_configured_audience_aud_is_not_checked() -> None:
    service = TokenService(SECRET)
    token = jwt.encode({"sub": "x", "aud": "anything", "exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert service.verify(token).user_id == "x"


def test_algorithm_confusion_and_other_keys_are_refused(rsa_key: SigningKey) -> None:
    service = pem_service(rsa_key)
    claims = {"sub": "x", "exp": int(time.time()) + 60}
    other = SigningKey.new("RS256")
    es = SigningKey.new("ES256")
    # The public key used as an HMAC secret (the classic confusion attack): PyJWT refuses
    # to sign with a PEM as an HMAC key, so the token is built by hand.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(rsa_key.public_pem().encode(), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{_b64(mac)}"
    hs256 = jwt.encode(claims, SECRET, algorithm="HS256")
    for token in (other.sign(claims), es.sign(claims), confused, hs256):
        with pytest.raises(TokenError, match="Invalid token"):
            service.verify(token)
    assert service.verify(rsa_key.sign(claims)).user_id == "x"


def test_expired_asymmetric_token_says_expired(rsa_key: SigningKey) -> None:
    with pytest.raises(TokenError, match="Token expired"):
        pem_service(rsa_key).verify(rsa_key.sign({"sub": "x", "exp": int(time.time()) - 5}))


def test_cannot_mint_without_a_secret(rsa_key: SigningKey) -> None:
    service = pem_service(rsa_key)
    assert not service.can_mint
    with pytest.raises(RuntimeError, match="identity provider"):
        service.mint("x")


# -------------------------------------------------------------------- settings


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for name in ("JWT_ALGORITHM", "JWT_PUBLIC_KEY", "JWKS_URL", "ACCESS_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"JWT_ALGORITHM": "RS256"}, "JWKS_URL", "needs one of them"),
        ({"JWT_ALGORITHM": "HS256", "JWKS_URL": "https://idp.example/certs"}, "JWKS_URL", "unset JWKS_URL"),
        (
            {"JWT_ALGORITHM": "ES256", "JWKS_URL": "https://idp.example/certs", "JWT_PUBLIC_KEY": "x"},
            "JWT_PUBLIC_KEY",
            "keep one",
        ),
        ({"JWT_ALGORITHM": "RS256", "JWKS_URL": "http://idp.example/certs"}, "JWKS_URL", "http://"),
        ({"JWT_ALGORITHM": "RS256", "JWKS_URL": "ftp://idp.example/certs"}, "JWKS_URL", "not an http"),
        ({"JWT_ALGORITHM": "PS512"}, "JWT_ALGORITHM", "RS256"),
        ({"JWT_LEEWAY_SECONDS": "-1"}, "JWT_LEEWAY_SECONDS", "0 to 300"),
        ({"MAX_SOCKETS_PER_USER": "0"}, "MAX_SOCKETS_PER_USER", "1 to 10000"),
        ({"FRAME_ANCESTORS": "'none'; script-src *"}, "FRAME_ANCESTORS", "CSP directive"),
    ],
)
def test_bad_identity_settings_name_the_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(monkeypatch, **env)
    assert caught.value.variable == variable
    assert words in str(caught.value)


def test_public_key_as_text_or_path_must_fit_the_algorithm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = SigningKey.new("EdDSA")
    path = tmp_path / "idp.pem"
    path.write_text(key.public_pem())
    claims = {"sub": "ed", "exp": int(time.time()) + 60}
    for value in (key.public_pem(), str(path), key.public_pem().replace("\n", "\\n")):
        service = build_token_service(_load(monkeypatch, JWT_ALGORITHM="EdDSA", JWT_PUBLIC_KEY=value))
        assert service.verify(key.sign(claims)).user_id == "ed"
    with pytest.raises(ConfigError, match="cannot verify RS256") as caught:
        build_token_service(_load(monkeypatch, JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=key.public_pem()))
    assert caught.value.variable == "JWT_PUBLIC_KEY"
    with pytest.raises(ConfigError, match="neither PEM text nor a readable file"):
        build_token_service(_load(monkeypatch, JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="not a PEM public key"):
        build_token_service(
            _load(monkeypatch, JWT_ALGORITHM="ES256", JWT_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----\nxx\n")
        )

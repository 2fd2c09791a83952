"""Builds the :class:`TokenService` that the settings describe, refusing keys that cannot work.

``JWT_PUBLIC_KEY`` is PEM text or the path of a file holding it; the key must
be of the type ``JWT_ALGORITHM`` names (an RSA key for RS256, a P-256 key for
ES256, an Ed25519 or Ed448 key for EdDSA), so a wrong key stops the server at
start instead of refusing every token later. The key is parsed by
``cryptography``; nothing here does cryptography itself.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from attendance_live.auth.jwks import JwksKeys
from attendance_live.auth.tokens import ClaimNames, TokenService
from attendance_live.config import ConfigError, Settings, check_key_source

__all__ = ["OidcDiscovery", "build_token_service", "discovery_url", "load_public_key"]

log = logging.getLogger(__name__)


def _fits(algorithm: str, key: object) -> bool:
    if algorithm == "RS256":
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


def load_public_key(value: str, algorithm: str) -> Any:
    """The public key in ``value`` (PEM text, or a path to it), checked against ``algorithm``."""
    text = value.strip()
    if "-----BEGIN" not in text:
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                "JWT_PUBLIC_KEY", f"is neither PEM text nor a readable file ({path}: {type(exc).__name__})"
            ) from None
    # Accept a PEM pasted with literal \n (as some secret stores keep one-line values).
    text = text.replace("\\n", "\n")
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError("JWT_PUBLIC_KEY", f"is not a PEM public key ({str(exc)[:120]})") from None
    if not _fits(algorithm, key):
        kind = type(key).__name__.removeprefix("_")
        raise ConfigError("JWT_PUBLIC_KEY", f"holds a {kind} key, which cannot verify {algorithm}")
    return key


def discovery_url(issuer: str) -> str:
    """Where an OpenID Provider's discovery document is (OpenID Connect Discovery 1.0, 4)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class OidcDiscovery:
    """The provider's signing keys by way of its discovery document (``OIDC_ISSUER``).

    Called in a worker thread by :class:`JwksKeys` (its ``fetcher``): reads
    ``jwks_uri`` from the discovery document once, then fetches the set with
    PyJWT's ``PyJWKClient`` each time. A provider that is down keeps raising
    ``OSError`` until it answers, which ``JwksKeys`` reports on ``/readyz``.
    """

    def __init__(self, issuer: str, *, timeout: float) -> None:
        self.issuer = issuer
        self.url = discovery_url(issuer)
        self._timeout = timeout
        self._client: jwt.PyJWKClient | None = None

    def jwks_uri(self) -> str:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - checked scheme
            document = json.loads(response.read(1024 * 1024))
        if not isinstance(document, dict):
            raise ValueError("the discovery document is not a JSON object")
        if document.get("issuer") != self.issuer:
            raise ValueError(
                f"the discovery document names issuer {str(document.get('issuer'))[:120]!r}, "
                f"not OIDC_ISSUER {self.issuer!r}"
            )
        uri = document.get("jwks_uri")
        parsed = urlsplit(uri) if isinstance(uri, str) else None
        if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise ValueError("the discovery document has no http(s) jwks_uri")
        if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the discovery document's jwks_uri uses http:// for {parsed.hostname!r}")
        return str(uri)

    def __call__(self) -> list[jwt.PyJWK]:
        if self._client is None:
            self._client = jwt.PyJWKClient(
                self.jwks_uri(),
                cache_keys=False,
                cache_jwk_set=False,
                timeout=self._timeout,
                headers={"Accept": "application/json"},
            )
        return self._client.get_signing_keys(refresh=True)


def build_token_service(settings: Settings) -> TokenService:
    """The verifier (and, with a secret, the minter) these settings ask for."""
    check_key_source(settings)  # again: settings built in code skip load_settings
    common: dict[str, Any] = {
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience or None,
        "claims": ClaimNames(
            user_id=settings.jwt_user_id_claim,
            name=settings.jwt_name_claim,
            email=settings.jwt_email_claim,
            role=settings.jwt_role_claim,
        ),
        "leeway": settings.jwt_leeway_seconds,
    }
    algorithm = settings.jwt_algorithm
    if settings.is_symmetric:
        return TokenService(settings.secret(), algorithm, **common)
    if not (settings.jwt_issuer and settings.jwt_audience):
        log.warning(
            "JWT_ISSUER or JWT_AUDIENCE is not set: any token the key signs is accepted, including "
            "tokens the provider issued for other applications; set both (docs/operations.md)"
        )
    if settings.jwt_public_key is not None:
        key = load_public_key(settings.jwt_public_key.get_secret_value(), algorithm)
        return TokenService(algorithm=algorithm, public_key=key, **common)
    if settings.jwks_url is None:
        assert settings.oidc_issuer is not None  # check_key_source made sure of one source
        discovery = OidcDiscovery(settings.oidc_issuer, timeout=settings.jwks_timeout_seconds)
        keys = JwksKeys(
            discovery.url,
            algorithm,
            timeout=settings.jwks_timeout_seconds,
            refresh_every=settings.jwks_refresh_seconds,
            fetcher=discovery,
            source="OIDC_ISSUER's discovery",
        )
        return TokenService(algorithm=algorithm, jwks=keys, **common)
    jwks = JwksKeys(
        settings.jwks_url,
        algorithm,
        timeout=settings.jwks_timeout_seconds,
        refresh_every=settings.jwks_refresh_seconds,
    )
    return TokenService(algorithm=algorithm, jwks=jwks, **common)

"""Builds the :class:`TokenService` that the settings describe, refusing keys that cannot work.

``JWT_PUBLIC_KEY`` is PEM text or the path of a file holding it; the key must
be of the type ``JWT_ALGORITHM`` names (an RSA key for RS256, a P-256 key for
ES256, an Ed25519 or Ed448 key for EdDSA), so a wrong key stops the server at
start instead of refusing every token later. The key is parsed by
``cryptography``; nothing here does cryptography itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from attendance_live.auth.jwks import JwksKeys
from attendance_live.auth.tokens import ClaimNames, TokenService
from attendance_live.config import ConfigError, Settings, check_key_source

__all__ = ["build_token_service", "load_public_key"]

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
    assert settings.jwks_url is not None  # check_key_source made sure of one source
    jwks = JwksKeys(
        settings.jwks_url,
        algorithm,
        timeout=settings.jwks_timeout_seconds,
        refresh_every=settings.jwks_refresh_seconds,
    )
    return TokenService(algorithm=algorithm, jwks=jwks, **common)

"""JWTs exactly as the contract says.

* The algorithm is pinned by configuration and never read from the token, so
  ``alg: none`` and algorithm-confusion tokens are refused.
* ``exp`` is required and enforced.
* The user id is ``sub``, falling back to ``uid`` (the seed's system used
  both; we accept both but keep one id space: whichever the token carries).
* ``role`` is ``student | teacher | admin``; missing or unknown means student.

Errors carry one of the three messages clients see in ``connect_error``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import jwt

from attendance_live.vocabulary import ROLES, Role

__all__ = [
    "AUTHENTICATION_REQUIRED",
    "INVALID_TOKEN",
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "TOKEN_EXPIRED",
    "Identity",
    "Role",
    "TokenError",
    "TokenService",
]

MAX_ID_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 200

AUTHENTICATION_REQUIRED: Final = "Authentication required"
INVALID_TOKEN: Final = "Invalid token"  # noqa: S105 - a message
TOKEN_EXPIRED: Final = "Token expired"  # noqa: S105 - a message


class TokenError(Exception):
    """A token was missing, invalid or expired; ``message`` is what the client is told."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # for logs only; never contains the token


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token says the caller is."""

    user_id: str
    name: str
    email: str | None
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_create_courses(self) -> bool:
        return self.role in ("teacher", "admin")


def _user_id(claims: dict[str, object]) -> str:
    for key in ("sub", "uid"):
        value = claims.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str) and value.strip():
            if len(value) > MAX_ID_LENGTH:
                raise TokenError(INVALID_TOKEN, f"{key} longer than {MAX_ID_LENGTH} characters")
            return value
    raise TokenError(INVALID_TOKEN, "no sub or uid claim")


def _text_claim(claims: dict[str, object], key: str) -> str | None:
    value = claims.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_NAME_LENGTH]
    return None


class TokenService:
    """Verifies and mints tokens with one secret and one pinned algorithm."""

    def __init__(self, secret: str, algorithm: str = "HS256") -> None:
        self._secret = secret
        self._algorithm = algorithm

    def verify(self, token: object) -> Identity:
        if token is None or (isinstance(token, str) and not token.strip()):
            raise TokenError(AUTHENTICATION_REQUIRED, "no token")
        if not isinstance(token, str) or len(token) > 8192:
            raise TokenError(INVALID_TOKEN, "token is not a string of sensible length")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                options={"require": ["exp"], "verify_sub": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError(TOKEN_EXPIRED, "exp in the past") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(INVALID_TOKEN, type(exc).__name__) from exc
        user_id = _user_id(claims)
        role_claim = claims.get("role")
        role: Role = role_claim if role_claim in ROLES else "student"
        return Identity(
            user_id=user_id,
            name=_text_claim(claims, "name") or user_id,
            email=_text_claim(claims, "email"),
            role=role,
        )

    def mint(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: Role = "student",
        email: str | None = None,
        ttl_seconds: int = 3600,
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {"sub": user_id, "role": role, "iat": now, "exp": now + ttl_seconds}
        if name:
            claims["name"] = name
        if email:
            claims["email"] = email
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

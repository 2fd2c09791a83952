"""JWTs exactly as the contract says.

* The algorithm is pinned by configuration and never read from the token, so
  ``alg: none`` and algorithm-confusion tokens are refused.
* Keys: an HMAC secret (``ACCESS_TOKEN_SECRET``, HS256 by default), or for
  RS256, ES256 and EdDSA a public key (``JWT_PUBLIC_KEY``) or the identity
  provider's key set (``JWKS_URL``, see :mod:`attendance_live.auth.jwks`),
  where the token's ``kid`` picks the key.
* ``exp`` is required and enforced; ``exp``, ``nbf`` and ``iat`` must be
  numbers (PyJWT alone accepts numeric strings). ``iss`` and ``aud`` are
  required and checked when ``JWT_ISSUER`` / ``JWT_AUDIENCE`` are set.
* Claims are mapped by :class:`ClaimNames`: the user id is ``sub`` falling
  back to ``uid`` (the seed's system used both) unless another claim is
  named; the role claim may be a dotted path into nested claims
  (``realm_access.roles``), and a list of roles means the highest of
  ``admin > teacher > student`` in it. Missing or unknown means student.

The server's own session tokens (``auth.session_keys``) are accepted beside
the configured source: a token whose ``kid`` names one of the server's keys is
verified by those keys only, with ``iss`` = ``PUBLIC_URL`` required.

Errors carry one of the three messages clients see in ``connect_error``.

With a static key (a secret or ``JWT_PUBLIC_KEY``) a verified token is kept,
by its exact text, until its ``exp`` (PyJWT's own test: expired once
``exp <= now - leeway``): a client that reconnects, or calls the API again,
with the same token is not verified again (PyJWT's decode and the claim
checks cost about 60 µs, a large share of a reconnect storm's work). Nothing
but a success is kept, at most ``verified_cache_size`` tokens (the oldest go
first). With a JWKS nothing is kept, so that a key the provider withdraws stops
working at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import jwt

from attendance_live.auth.jwks import JwksKeys, JwksState
from attendance_live.vocabulary import Role

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AUTHENTICATION_REQUIRED",
    "INVALID_TOKEN",
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TOKEN_LENGTH",
    "NUMERIC_CLAIMS",
    "TOKEN_EXPIRED",
    "VERIFIED_CACHE_SIZE",
    "ClaimNames",
    "Identity",
    "OwnTokens",
    "Role",
    "TokenError",
    "TokenService",
    "Verified",
    "claim",
]

ASYMMETRIC_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")
MAX_ID_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 200
MAX_TOKEN_LENGTH: Final = 8192
#: Verified tokens kept (static keys only): about 100 bytes each beyond the token and the
#: :class:`Verified`, which a connected socket holds anyway.
VERIFIED_CACHE_SIZE: Final = 65536
NUMERIC_CLAIMS: Final = ("exp", "nbf", "iat")

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


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified token: who, and until when (``exp``, seconds since the epoch)."""

    identity: Identity
    expires_at: float


class OwnTokens(Protocol):
    """The server's own session tokens (``auth.session_keys.SessionKeys``), checked beside the
    configured key source."""

    def owns(self, token: str) -> bool: ...
    async def check(self, token: str) -> Verified: ...


@dataclass(frozen=True, slots=True)
class ClaimNames:
    """Which claims carry the user id, name, email and role (``JWT_*_CLAIM``)."""

    user_id: str = "sub"
    name: str = "name"
    email: str = "email"
    role: str = "role"


def claim(claims: dict[str, Any], path: str) -> object:
    """A claim by name, or by dotted path into nested objects when no claim has that name
    (Auth0's namespaced claims are URLs with dots in them, and are found by name)."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _user_id(claims: dict[str, Any], names: ClaimNames) -> str:
    keys = ("sub", "uid") if names.user_id == "sub" else (names.user_id,)
    for key in keys:
        value = claim(claims, key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str) and value.strip():
            if len(value) > MAX_ID_LENGTH:
                raise TokenError(INVALID_TOKEN, f"{key} longer than {MAX_ID_LENGTH} characters")
            return value
    raise TokenError(INVALID_TOKEN, f"no {' or '.join(keys)} claim")


def _text_claim(claims: dict[str, Any], path: str) -> str | None:
    value = claim(claims, path)
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_NAME_LENGTH]
    return None


def _require_numbers(claims: dict[str, Any]) -> None:
    for name in NUMERIC_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise TokenError(INVALID_TOKEN, f"{name} is not a number")


def _role(value: object) -> Role:
    found = value if isinstance(value, list) else [value]
    for role in ("admin", "teacher"):
        if role in found:
            return role
    return "student"


class TokenService:
    """Verifies tokens with one pinned algorithm and one key source; mints HS tokens."""

    def __init__(
        self,
        secret: str | None = None,
        algorithm: str = "HS256",
        *,
        public_key: Any = None,
        jwks: JwksKeys | None = None,
        issuer: str | None = None,
        audience: Sequence[str] | None = None,
        claims: ClaimNames | None = None,
        leeway: float = 0,
        verified_cache_size: int = VERIFIED_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sum(source is not None for source in (secret, public_key, jwks)) != 1:
            raise ValueError("give exactly one of secret, public_key, jwks")
        if verified_cache_size < 0:
            raise ValueError(f"verified_cache_size must be 0 (no cache) or more, not {verified_cache_size}")
        self._secret = secret
        self._algorithm = algorithm
        self._public_key = public_key
        self.jwks = jwks
        self._issuer = issuer
        self._audience = list(audience) if audience else None
        self._claims = claims or ClaimNames()
        self._leeway = leeway
        self._clock = clock  # seconds since the epoch: what exp is compared with (tests pass their own)
        self._required = ["exp"] + (["iss"] if issuer else []) + (["aud"] if self._audience else [])
        # Token text → its verification, static keys only (see the module's docstring).
        self._verified: dict[str, Verified] = {}
        self._cache_size = verified_cache_size if jwks is None else 0
        # The server's own session tokens, accepted beside this key source (set by create_app).
        self.sessions: OwnTokens | None = None

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def can_mint(self) -> bool:
        """Whether this server can sign tokens (only with a shared HMAC secret)."""
        return self._secret is not None

    def state(self) -> JwksState | None:
        """The key provider's state for ``/readyz``; None without a JWKS."""
        return self.jwks.state() if self.jwks is not None else None

    def start(self) -> None:
        """Begin loading the provider's keys (a JWKS only; call from the running loop)."""
        if self.jwks is not None:
            self.jwks.start()

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()

    # ------------------------------------------------------------ verification

    def verify(self, token: object) -> Identity:
        """Verify with a static key (secret or ``JWT_PUBLIC_KEY``); see :meth:`check`."""
        return self._check_static(self._text(token)).identity

    async def check(self, token: object) -> Verified:
        """Verify with any key source, fetching the provider's keys when needed.

        A token naming one of the server's own session keys is verified by those
        keys only (and must carry the server's ``iss``); anything else by the
        configured source only.
        """
        text = self._text(token)
        if self.sessions is not None and self.sessions.owns(text):
            return await self.sessions.check(text)
        if self.jwks is None:
            return self._check_static(text)
        try:
            kid = jwt.get_unverified_header(text).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenError(INVALID_TOKEN, type(exc).__name__) from exc
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise TokenError(INVALID_TOKEN, "kid is not a short string")
        key = await self.jwks.key_for(kid)
        if key is None:
            raise TokenError(INVALID_TOKEN, "no key in JWKS_URL's set for this token's kid")
        return self._decode(text, key)

    def _check_static(self, text: str) -> Verified:
        verified = self._verified.get(text)
        if verified is not None:
            if verified.expires_at > self._clock() - self._leeway:
                return verified
            self._verified.pop(text, None)  # expired: decoding says so, with the right message
        verified = self._decode(text, self._static_key())
        if self._cache_size:
            if len(self._verified) >= self._cache_size:
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[text] = verified
        return verified

    def _static_key(self) -> Any:
        if self.jwks is not None:
            raise RuntimeError("this TokenService uses a JWKS: call await check(token)")
        return self._secret if self._secret is not None else self._public_key

    @staticmethod
    def _text(token: object) -> str:
        if token is None or (isinstance(token, str) and not token.strip()):
            raise TokenError(AUTHENTICATION_REQUIRED, "no token")
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(INVALID_TOKEN, "token is not a string of sensible length")
        return token

    def _decode(self, token: str, key: Any) -> Verified:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={
                    "require": self._required,
                    "verify_sub": False,
                    "verify_aud": self._audience is not None,
                    "verify_exp": False,  # below, against this service's clock
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenError(INVALID_TOKEN, type(exc).__name__) from exc
        _require_numbers(claims)  # PyJWT reads `exp: true` as 1, which is no number here
        if float(claims["exp"]) <= self._clock() - self._leeway:  # PyJWT's rule: expired at exp
            raise TokenError(TOKEN_EXPIRED, "exp in the past")
        names = self._claims
        user_id = _user_id(claims, names)
        identity = Identity(
            user_id=user_id,
            name=_text_claim(claims, names.name) or user_id,
            email=_text_claim(claims, names.email),
            role=_role(claim(claims, names.role)),
        )
        return Verified(identity, float(claims["exp"]))

    # ------------------------------------------------------------------ minting

    def mint(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: Role = "student",
        email: str | None = None,
        ttl_seconds: int = 3600,
    ) -> str:
        if self._secret is None:
            raise RuntimeError(f"{self._algorithm} tokens come from the identity provider, not from here")
        now = int(self._clock())
        claims: dict[str, object] = {"sub": user_id, "role": role, "iat": now, "exp": now + ttl_seconds}
        if name:
            claims["name"] = name
        if email:
            claims["email"] = email
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience[0]
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

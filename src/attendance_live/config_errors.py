"""A wrong setting as one readable line: :class:`ConfigError`, naming the variable, the problem and the fix.

Each variable's fix is in one table here (the term's settings add theirs from ``term_config``), so
``config.load_settings`` and every later check (key sources, sign-in, the secret file) stop the
server with the same kind of message.
"""

from __future__ import annotations

from attendance_live.term_config import TERM_FIXES

__all__ = ["ConfigError"]


# How each variable is fixed when it is wrong; shown beside the problem.
_FIXES: dict[str, str] = {
    "ACCESS_TOKEN_SECRET": (
        "set it to at least 32 random bytes, e.g. "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`, "
        "or unset it to use a generated local secret"
    ),
    "DATABASE_URL": (
        "use sqlite+aiosqlite:///PATH (or sqlite:///PATH) "
        "or postgresql+asyncpg://USER:PASSWORD@HOST/DB (or postgresql://...)"
    ),
    "REDIS_URL": "use redis://HOST:PORT/DB, or unset it to run one node",
    "PORT": "use a whole number from 1 to 65535",
    "HOST": "use an address to listen on, e.g. 127.0.0.1 or 0.0.0.0",
    "CORS_ORIGINS": "use * or a comma-separated list of origins such as http://localhost:3000",
    "SESSION_MAX_MINUTES": "use a whole number of minutes from 1 to 10080",
    "LOG_LEVEL": "use one of debug, info, warning, error",
    "LOG_FORMAT": "use text or json",
    "JWT_ALGORITHM": (
        "use HS256 (with ACCESS_TOKEN_SECRET), or RS256, ES256 or EdDSA with JWT_PUBLIC_KEY or JWKS_URL"
    ),
    "JWT_PUBLIC_KEY": (
        "set it to the identity provider's public key in PEM (-----BEGIN PUBLIC KEY-----...) "
        "or to the path of a file holding it, of the type JWT_ALGORITHM names"
    ),
    "JWKS_URL": (
        "set it to the provider's JWKS endpoint, e.g. "
        "https://login.example.edu/realms/REALM/protocol/openid-connect/certs "
        "(http:// only for a loopback host)"
    ),
    "JWT_ISSUER": "set it to the exact iss of the provider's tokens, e.g. https://login.example.edu/realms/REALM",
    "JWT_AUDIENCE": "set it to the aud (or comma-separated auds) the provider puts in tokens for this server",
    "JWT_USER_ID_CLAIM": "name a claim or a dotted path such as sub, oid or preferred_username",
    "JWT_NAME_CLAIM": "name a claim or a dotted path such as name or preferred_username",
    "JWT_EMAIL_CLAIM": "name a claim or a dotted path such as email or upn",
    "JWT_ROLE_CLAIM": "name a claim or a dotted path such as role, roles or realm_access.roles",
    "JWT_LEEWAY_SECONDS": "use a whole number of seconds from 0 to 300",
    "JWKS_TIMEOUT_SECONDS": "use a number of seconds from 0.1 to 60",
    "JWKS_REFRESH_SECONDS": "use a number of seconds from 30 to 86400",
    "MAX_SOCKETS_PER_USER": "use a whole number from 1 to 10000",
    "MAX_BODY_BYTES": "use a whole number of bytes from 1024 to 104857600",
    "FRAME_ANCESTORS": (
        "use 'none' (the default: no framing), 'self', or space-separated origins allowed to frame "
        "the dashboard, e.g. https://lms.example.edu"
    ),
    "CONNECT_TIMEOUT_SECONDS": "use a number of seconds from 1 to 600",
    "PING_TIMEOUT_SECONDS": "use a number of seconds from 1 to 120",
    "HEADER_TIMEOUT_SECONDS": "use a number of seconds from 1 to 300",
    "HTTP_MAX_HEADER_BYTES": "use a whole number of bytes from 1024 to 1048576 (default 16384)",
    "HTTP_MAX_HEADERS": "use a whole number from 8 to 1000 (default 100)",
    "CHECK_IN_CODE_ATTEMPTS": "use a whole number of wrong codes from 1 to 1000 (default 5)",
    "CHECK_IN_CODE_WINDOW_SECONDS": "use a number of seconds from 1 to 86400 (default 60)",
    "HTTP_RATE_LIMITS": "use true (limit requests per user and per address) or false (off, for benchmarks)",
    "HTTP_USER_RATE_LIMIT": "use a whole number of requests per window from 1 to 1000000",
    "HTTP_ADDRESS_RATE_LIMIT": "use a whole number of requests per window from 1 to 1000000",
    "HTTP_RATE_WINDOW_SECONDS": "use a number of seconds from 1 to 3600 (default 60)",
    "TRUSTED_PROXIES": (
        "use a comma-separated list of the proxies' networks, e.g. 127.0.0.1/32,10.0.0.0/8, "
        "or leave it empty when clients connect directly"
    ),
    "CHECK_IN_CODE_GRACE_SECONDS": "use a number of seconds from 0 to 60",
    "RECOVERY_WINDOW_SECONDS": "use a number of seconds from 0 (recovery off) to 86400",
    "EVENT_OFFSETS": "use true (course events carry their offset; recovery on) or false",
    "OUTBOX_RETENTION_SECONDS": (
        "use a number of seconds from 600 to 31536000, well above RECOVERY_WINDOW_SECONDS"
    ),
    "OUTBOX_POLL_SECONDS": "use a number of seconds from 0.05 to 60",
    "OIDC_ISSUER": (
        "set it to the provider's issuer URL, the one whose /.well-known/openid-configuration answers, "
        "e.g. https://login.example.edu/realms/REALM (http:// only for a loopback host), "
        "or unset it to turn sign-in with a provider off"
    ),
    "OIDC_CLIENT_ID": (
        "set it to the client id of the public client (no secret, PKCE) registered at the provider "
        'for this dashboard (docs/operations.md, "Sign-in")'
    ),
    "OIDC_SCOPES": "use space-separated scopes that include openid, e.g. 'openid profile email'",
    "OIDC_AUDIENCE": "set it to the API audience the provider puts in access tokens for this server",
    "OIDC_DISPLAY_NAME": "use a short name such as 'University login' (at most 80 characters)",
    "PUBLIC_URL": (
        "set it to the address people use to reach this server, e.g. https://attendance.example.edu "
        "(no path, query or fragment)"
    ),
    "SESSION_TOKEN_MAX_SECONDS": "use a whole number of seconds from 60 to 604800",
    **TERM_FIXES,  # the term's settings (issue 21): term_config.py
}


class ConfigError(Exception):
    """A setting is missing or wrong; ``str()`` is one line naming it and the fix."""

    def __init__(self, variable: str, problem: str) -> None:
        fix = _FIXES.get(variable, "correct it")
        super().__init__(f"Configuration error: {variable} {problem}; {fix}.")
        self.variable = variable
        self.problem = problem

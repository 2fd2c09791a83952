"""The one settings object. Nothing else in the package reads ``os.environ``.

Every variable of the public contract lives here, with the project's own
additions below it. ``load_settings()`` turns a pydantic validation failure
into a :class:`ConfigError` whose message names the variable and the fix, so
a bad configuration stops the server with one readable line.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from attendance_live.config_errors import ConfigError
from attendance_live.networks import IPNetwork, parse_networks
from attendance_live.term_config import TermSettings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_SECRET_FILE",
    "MIN_SECRET_BYTES",
    "SUPPORTED_ALGORITHMS",
    "Algorithm",
    "ConfigError",
    "Settings",
    "check_key_source",
    "check_sign_in",
    "ensure_secret",
    "load_settings",
    "normalise_database_url",
]

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./attendance-live.db"
DEFAULT_SECRET_FILE = ".attendance-live-secret"  # noqa: S105 - a file name
SUPPORTED_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA")
Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"]


def normalise_database_url(raw: str) -> str:
    """Accept the plain SQLAlchemy URL forms and return the async-driver form."""
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ValueError(f"is not a database URL ({raw!r} could not be parsed)") from exc
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "aiosqlite", "pysqlite"):
        if not url.database:
            raise ValueError("names no database file (in-memory SQLite would lose everything)")
        return url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg", "psycopg2"):
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"uses an unsupported database {url.drivername!r}")


class Settings(TermSettings):
    """Every setting, read from the environment (names are the upper-case field names)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- the contract's variables ---
    access_token_secret: SecretStr | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=4002, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    session_max_minutes: int = Field(default=180, ge=1, le=10080)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Proxies whose X-Forwarded-For is believed (networks; empty: clients connect directly).
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    # How long the previous check-in code is still accepted after it was replaced.
    check_in_code_grace_seconds: float = Field(default=5.0, ge=0, le=60)
    # How long after a disconnect a Socket.IO client may recover its subscriptions and missed events.
    recovery_window_seconds: float = Field(default=120.0, ge=0, le=86400)

    # --- the project's additions ---
    jwt_algorithm: Algorithm = "HS256"
    # Asymmetric verification (issue 12): one key source, optional iss/aud checks, claim names.
    jwt_public_key: SecretStr | None = None  # PEM text or a path; kept out of reprs and logs
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_user_id_claim: str = Field(default="sub", min_length=1, max_length=200)
    jwt_name_claim: str = Field(default="name", min_length=1, max_length=200)
    jwt_email_claim: str = Field(default="email", min_length=1, max_length=200)
    jwt_role_claim: str = Field(default="role", min_length=1, max_length=200)
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=300)
    jwks_timeout_seconds: float = Field(default=5.0, ge=0.1, le=60)
    jwks_refresh_seconds: float = Field(default=300.0, ge=30, le=86400)
    # Hardening (issue 12).
    max_sockets_per_user: int = Field(default=20, ge=1, le=10000)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    frame_ancestors: str = Field(default="'none'", min_length=1, max_length=2000)
    # An Engine.IO session that has not joined the namespace (no Socket.IO CONNECT) by then is closed.
    connect_timeout_seconds: float = Field(default=45.0, ge=1, le=600)
    # A connection whose request headers are not complete by then is closed (slowloris).
    header_timeout_seconds: float = Field(default=10.0, ge=1, le=300)
    # The request line and headers of one request (websocket upgrades included): past either
    # limit the answer is 431 and the connection is closed (api/hardening.py http_protocol).
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    http_max_headers: int = Field(default=100, ge=8, le=1000)
    # Wrong check-in codes one student may send per session in a window; then 429 too_many_attempts
    # (counted in Redis across nodes when REDIS_URL is set; limits.py).
    check_in_code_attempts: int = Field(default=5, ge=1, le=1000)
    check_in_code_window_seconds: float = Field(default=60.0, ge=1, le=86400)
    # Refused join codes per user (POST /api/join), shared by every node with Redis.
    join_code_attempts: int = Field(default=10, ge=1, le=1000)
    join_code_window_seconds: float = Field(default=600.0, ge=1, le=86400)
    # HTTP requests per user and per client address in a window, per node (api/limits.py).
    http_rate_limits: bool = True
    http_user_rate_limit: int = Field(default=600, ge=1, le=1_000_000)
    http_address_rate_limit: int = Field(default=6000, ge=1, le=1_000_000)
    http_rate_window_seconds: float = Field(default=60.0, ge=1, le=3600)
    # Engine.IO's: a client must answer a ping within this; also bounds a websocket upgrade's handshake.
    ping_timeout_seconds: float = Field(default=20.0, ge=1, le=120)
    secret_file: Path = Path(DEFAULT_SECRET_FILE)
    log_format: Literal["text", "json"] = "text"
    socket_rate_limit: float = Field(default=20.0, gt=0, le=10000)
    socket_rate_burst: int = Field(default=40, ge=1, le=100000)
    max_message_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    auto_end_poll_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Least time between two studentCount-only snapshots of one course (bursts share one).
    count_update_interval_ms: int = Field(default=100, ge=0, le=5000)
    # Bytes that may wait to be written to one socket; a client that stops reading is closed
    # past it, so it never holds up the others (docs/transport.md, "Backpressure").
    outgoing_buffer_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)
    # permessage-deflate on websockets: off by default, as in Node (about 100 KiB per connection).
    ws_per_message_deflate: bool = False
    # Delivery (issue 10): course events carry their stream offset as a last argument, which is
    # what connection state recovery resumes from. Off for clients that cannot take the extra
    # argument (recovery is then off too).
    event_offsets: bool = True
    # How long outbox rows are kept (recovery can resume only from an offset still stored).
    outbox_retention_seconds: float = Field(default=86400.0, ge=600, le=31536000)
    # How often every node looks in the outbox for events it was not told about (a node that died
    # after its commit, a Redis outage).
    outbox_poll_seconds: float = Field(default=1.0, ge=0.05, le=60)
    # Tests only: the process kills itself (SIGKILL) right after committing an outbox row of this
    # kind (e.g. courseSessionStarted), before any relay saw it. Never set it in production.
    kill_after_commit_for_tests: str | None = None
    # The token `attendance-live watch` connects with when --token is not given.
    attendance_live_token: SecretStr | None = None

    # --- sign-in (issue 18) ---
    # The dashboard signs in at this OpenID Provider (Authorization Code + PKCE, public client).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = Field(default=None, max_length=400)
    oidc_scopes: str = Field(default="openid profile email", min_length=6, max_length=1000)
    oidc_audience: str | None = Field(default=None, max_length=400)
    oidc_display_name: str | None = Field(default=None, max_length=80)
    # The address people reach this server at; the `iss` of the server's own session tokens.
    public_url: str | None = None
    # Longest life of a session token the server mints; a rotated-out key stays valid this long.
    session_token_max_seconds: int = Field(default=12 * 3600, ge=60, le=7 * 86400)
    # Developer option: the sign-in page also offers the paste-a-token box (always on with --demo).
    sign_in_token_form: bool = False

    @field_validator("access_token_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"is shorter than {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"is not a Redis URL ({value.split('@')[-1]!r})")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            origins = [part.strip() for part in value.split(",") if part.strip()]
            return origins or ["*"]
        return value

    @field_validator("jwt_audience", mode="before")
    @classmethod
    def _split_audiences(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _oidc_defaults(cls, data: object) -> object:
        """With OIDC_ISSUER, tokens are the provider's: RS256 and its issuer unless set otherwise."""
        if not isinstance(data, dict):
            return data
        present = {key.lower(): value for key, value in data.items() if value not in (None, "")}
        issuer = present.get("oidc_issuer")
        if not isinstance(issuer, str) or not issuer.strip():
            return data
        filled = dict(data)
        if "jwt_algorithm" not in present:
            filled["jwt_algorithm"] = "RS256"
        if "jwt_issuer" not in present:
            filled["jwt_issuer"] = issuer.strip()
        if "jwt_audience" not in present and isinstance(present.get("oidc_audience"), str):
            filled["jwt_audience"] = present["oidc_audience"]
        return filled

    @field_validator(
        "jwks_url",
        "jwt_issuer",
        "oidc_issuer",
        "oidc_client_id",
        "oidc_audience",
        "oidc_display_name",
        "public_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise ValueError(f"is not an http(s) URL ({value[:80]!r})")
        if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(
                f"uses http:// for {parsed.hostname!r}: keys fetched in clear could be replaced in transit"
            )
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _oidc_issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parsed = urlsplit(value)
        if parsed.scheme not in ("https", "http") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError(f"is not an http(s) issuer URL ({value[:80]!r})")
        if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"uses http:// for {parsed.hostname!r}: sign-in needs https")
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _oidc_scopes(cls, value: str) -> str:
        scopes = value.split()
        if "openid" not in scopes:
            raise ValueError(f"does not include openid ({value[:80]!r})")
        return " ".join(scopes)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise ValueError(f"is not an http(s) URL ({value[:80]!r})")
        if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
            raise ValueError(f"has a path, query or fragment ({value[:80]!r})")
        return f"{parsed.scheme}://{parsed.netloc}"

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        if any(ch in value for ch in ";,\r\n"):
            raise ValueError(f"holds a character that would end the CSP directive ({value[:80]!r})")
        return value.strip()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_networks(value, "entry")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def is_symmetric(self) -> bool:
        """Whether tokens are HMAC-signed with ACCESS_TOKEN_SECRET (and this server can mint them)."""
        return self.jwt_algorithm.startswith("HS")

    @property
    def issuer_url(self) -> str:
        """``PUBLIC_URL``, or the address this server listens on (``iss`` of its session tokens)."""
        if self.public_url is not None:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def oidc_origin(self) -> str | None:
        """The OpenID Provider's origin (scheme://host:port), which the dashboard fetches from."""
        if self.oidc_issuer is None:
            return None
        parsed = urlsplit(self.oidc_issuer)
        return f"{parsed.scheme}://{parsed.netloc}"

    @property
    def oidc_name(self) -> str:
        """What the sign-in button calls the provider (``OIDC_DISPLAY_NAME``, else its host)."""
        if self.oidc_display_name:
            return self.oidc_display_name
        return urlsplit(self.oidc_issuer or "").hostname or "your identity provider"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def secret(self) -> str:
        """The signing secret; ``ensure_secret`` must have run when none was configured."""
        if self.access_token_secret is None:
            raise ConfigError("ACCESS_TOKEN_SECRET", "is not set")
        return self.access_token_secret.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise :class:`ConfigError` naming the first bad variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = str(error["loc"][0]).upper() if error["loc"] else "configuration"
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        if variable != "ACCESS_TOKEN_SECRET" and isinstance(value, str | int) and "(" not in message:
            message = f"{message} (got {str(value)[:80]!r})"
        raise ConfigError(variable, message[:1].lower() + message[1:]) from None
    check_key_source(settings)
    check_sign_in(settings)
    return settings


def check_sign_in(settings: Settings) -> None:
    """OIDC_ISSUER needs a client id, and tokens the server can verify with the provider's keys."""
    if settings.oidc_issuer is None:
        return
    if not settings.oidc_client_id:
        raise ConfigError("OIDC_CLIENT_ID", "is not set, and OIDC_ISSUER is")
    if settings.is_symmetric:
        raise ConfigError(
            "JWT_ALGORITHM",
            f"is {settings.jwt_algorithm} but OIDC_ISSUER is set: the provider's tokens are signed with "
            "its own key; unset JWT_ALGORITHM (RS256 is then used) or name the provider's algorithm",
        )


def check_key_source(settings: Settings) -> None:
    """One key source that fits the algorithm: the secret for HS*, else a public key or a JWKS."""
    algorithm = settings.jwt_algorithm
    if settings.is_symmetric:
        for variable, value in (("JWT_PUBLIC_KEY", settings.jwt_public_key), ("JWKS_URL", settings.jwks_url)):
            if value is not None:
                raise ConfigError(
                    variable,
                    f"is set but JWT_ALGORITHM is {algorithm}, which verifies with ACCESS_TOKEN_SECRET: "
                    f"set JWT_ALGORITHM to RS256, ES256 or EdDSA, or unset {variable}",
                )
        return
    if settings.jwt_public_key is None and settings.jwks_url is None and settings.oidc_issuer is None:
        raise ConfigError(
            "JWKS_URL",
            f"is not set, nor JWT_PUBLIC_KEY or OIDC_ISSUER: JWT_ALGORITHM {algorithm} needs one of them",
        )
    if settings.jwt_public_key is not None and settings.jwks_url is not None:
        raise ConfigError("JWT_PUBLIC_KEY", "is set together with JWKS_URL: keep one of them")


def ensure_secret(settings: Settings) -> Settings:
    """Give settings a secret: the configured one, or one generated into a local file.

    ``serve``, ``demo`` and ``token`` share the generated secret, so the
    embedded default works with nothing configured. The file is created with
    mode 600 and reused afterwards.
    """
    if settings.access_token_secret is not None or not settings.is_symmetric:
        return settings
    path = settings.secret_file
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                "ACCESS_TOKEN_SECRET", f"is unset and the secret file {path} holds a short secret"
            )
    else:
        secret = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
    log.warning(
        "ACCESS_TOKEN_SECRET is not set: using the generated secret in %s "
        "(set ACCESS_TOKEN_SECRET to share tokens with another auth server)",
        path.resolve(),
    )
    return settings.model_copy(update={"access_token_secret": SecretStr(secret)})

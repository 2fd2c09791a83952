"""The settings of the term features (issue 21): webhooks, timetables, absence follow-up, mail.

``config.Settings`` inherits them, so they are read from the environment with
every other variable (and nothing here reads ``os.environ`` itself); they live
apart only to keep the term's additions in one place. ``TERM_FIXES`` joins
``config``'s table of fixes, so a bad value stops the server with a line that
names the variable and the fix, as every other setting does.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode

from attendance_live.networks import IPNetwork, parse_networks

__all__ = ["TERM_FIXES", "TermSettings"]

TERM_FIXES: dict[str, str] = {
    "WEBHOOK_ALLOWED_NETWORKS": (
        "use a comma-separated list of networks webhook endpoints may resolve to although they are "
        "loopback or private, e.g. 10.20.0.0/16, or leave it empty to allow public addresses only"
    ),
    "WEBHOOK_TIMEOUT_SECONDS": "use a number of seconds from 1 to 30",
    "WEBHOOK_POLL_SECONDS": "use a number of seconds from 0.05 to 300",
    "TIMETABLE_POLL_SECONDS": "use a number of seconds from 0.05 to 3600",
    "SMTP_URL": (
        "use smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS when the server offers it) or "
        "smtps://[USER:PASSWORD@]HOST[:PORT], or leave it unset to send no email"
    ),
    "SMTP_FROM": "use an address such as attendance@example.edu",
    "DASHBOARD_URL": "use the dashboard's address as users open it, e.g. https://attendance.example.edu",
}


class TermSettings(BaseSettings):
    """Webhooks, timetables, absence follow-up and mail; see docs/operations.md."""

    # Networks a webhook endpoint may resolve to although they are not public (SSRF allow-list).
    webhook_allowed_networks: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    # How long one delivery may take (connect, send, answer) before it counts as failed.
    webhook_timeout_seconds: float = Field(default=5.0, ge=1, le=30)
    # How often every node looks for deliveries that are due (retries, other nodes' events).
    webhook_poll_seconds: float = Field(default=5.0, ge=0.05, le=300)
    # How often the timetable scheduler looks for planned sessions when nothing is due sooner.
    timetable_poll_seconds: float = Field(default=30.0, ge=0.05, le=3600)
    # Absence alerts by email: unset sends none.
    smtp_url: SecretStr | None = None
    smtp_from: str = Field(default="attendance-live@localhost", min_length=3, max_length=320)
    # Where links in emails point (the dashboard); unset: the links are left out.
    dashboard_url: str | None = None

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _allowed_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_networks(value, "entry")
        return value

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _smtp_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        parsed = urlsplit(raw)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            # The URL may hold a password: name only its scheme.
            raise ValueError(f"is not an smtp:// or smtps:// URL (scheme {parsed.scheme!r})")
        return value

    @field_validator("dashboard_url", mode="before")
    @classmethod
    def _dashboard_url(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            parsed = urlsplit(value)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"is not an http(s) URL ({value[:80]!r})")
            return value.rstrip("/")
        return value

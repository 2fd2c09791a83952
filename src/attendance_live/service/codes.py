"""Rotating check-in codes, derived like TOTP (RFC 6238) from a per-session secret and the time.

A session in ``code`` mode has a random secret, stored with the session. Time
is cut into steps of ``code_period_seconds`` counted from the session's start;
the code of step *n* is ``HMAC-SHA256(secret, n)`` (the hex secret's bytes as
the key, *n* as 8 big-endian bytes) whose first 8 bytes, read as a big-endian
number, are written as 6 characters of :data:`ALPHABET` in base 19, least
significant digit first. Every node derives the same code from the same row and the
clock, so there is no shared state to keep, and asking again (a page refresh,
a second projector) never makes another batch of codes.

A code is accepted during its own step and, once replaced, for the grace
period (``CHECK_IN_CODE_GRACE_SECONDS``): from the first millisecond of step
*n+1* up to, not including, that moment plus the grace. Older codes, codes of
other sessions (other secrets) and anything after the session ended are
refused. Codes are compared in constant time and never logged.

Times are handled in whole milliseconds (the clock's resolution), so the
boundaries are exact.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "CodeStep",
    "code_at",
    "code_for_step",
    "new_secret",
    "normalise_code",
    "verify_code",
]

# No look-alikes: none of 0/O/Q/D, 1/I/L/J, 2/Z, 5/S, 8/B, G, U/V; 19 characters,
# 19**6 ≈ 47 million codes.
ALPHABET = "34679ACEFHKMNPRTWXY"
CODE_LENGTH = 6

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_secret() -> str:
    """A fresh session secret: 32 random bytes, hex."""
    return secrets.token_hex(32)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _at(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def code_for_step(secret: str, step: int) -> str:
    """The code of time step ``step`` (6 characters of :data:`ALPHABET`)."""
    digest = hmac.new(bytes.fromhex(secret), step.to_bytes(8, "big", signed=True), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")  # 64 bits: the modulo bias is negligible
    chars = []
    for _ in range(CODE_LENGTH):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class CodeStep:
    """The code in force at a moment: its step, the code, and when it is replaced."""

    step: int
    code: str
    expires_at: datetime


def code_at(secret: str, started_at: datetime, period_seconds: int, now: datetime) -> CodeStep:
    """The code in force at ``now`` for a session started at ``started_at``."""
    period_ms = period_seconds * 1000
    step = max(0, (_ms(now) - _ms(started_at)) // period_ms)
    return CodeStep(step, code_for_step(secret, step), _at(_ms(started_at) + (step + 1) * period_ms))


def normalise_code(typed: str) -> str:
    """What a student typed, as a code: upper case, without spaces or dashes."""
    return "".join(ch for ch in typed.upper() if ch not in " -\t")


def verify_code(
    secret: str,
    started_at: datetime,
    period_seconds: int,
    grace_seconds: float,
    now: datetime,
    typed: str,
) -> bool:
    """Whether ``typed`` is the current code, or the previous one within the grace period."""
    candidate = normalise_code(typed).encode()
    if len(candidate) != CODE_LENGTH:
        return False
    period_ms = period_seconds * 1000
    elapsed = _ms(now) - _ms(started_at)
    step = max(0, elapsed // period_ms)
    if hmac.compare_digest(candidate, code_for_step(secret, step).encode()):
        return True
    since_rotation = elapsed - step * period_ms
    return (
        step > 0
        and since_rotation < grace_seconds * 1000
        and hmac.compare_digest(candidate, code_for_step(secret, step - 1).encode())
    )

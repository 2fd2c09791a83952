"""Log formatting and token redaction (``logs``)."""

from __future__ import annotations

import json
import logging

import pytest

from attendance_live.auth.tokens import TokenService
from attendance_live.logs import configure_logging, redact

SECRET = "s" * 40


def test_tokens_never_reach_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    token = TokenService(SECRET).mint("someone", ttl_seconds=60)
    assert token not in redact(f"token={token}")
    assert "Bearer [redacted]" in redact("Authorization: Bearer abc.def")
    configure_logging("info", "json")
    logging.getLogger("attendance_live.test").warning("client sent %s", token)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "client sent [redacted-jwt]"
    assert entry["level"] == "warning"

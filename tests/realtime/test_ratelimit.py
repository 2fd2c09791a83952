"""The per-connection token bucket (``realtime.ratelimit``)."""

from __future__ import annotations

import time

import pytest

from attendance_live.realtime.ratelimit import TokenBucket


def test_token_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert bucket.take()
    assert not bucket.take()
    assert bucket.should_warn()
    assert not bucket.should_warn()
    now[0] += 1.0
    assert bucket.should_warn()

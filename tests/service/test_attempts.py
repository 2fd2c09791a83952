"""The per-user limit on failed attempts (join codes)."""

from __future__ import annotations

import pytest

from attendance_live.service.attempts import AttemptLimiter, seconds_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_limit_wait_for_the_window() -> None:
    clock = Clock()
    limiter = AttemptLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("u") == 0
        limiter.failed("u")
    assert limiter.retry_after("u") == 60
    assert limiter.retry_after("v") == 0  # per user
    clock.now += 59
    assert limiter.retry_after("u") == pytest.approx(1)
    clock.now += 1
    assert limiter.retry_after("u") == 0  # the oldest failure left the window


def test_memory_is_bounded() -> None:
    clock = Clock()
    limiter = AttemptLimiter(1, 60, max_users=2, clock=clock)
    for user in ("a", "b", "c"):
        limiter.failed(user)
    assert limiter.retry_after("a") == 0  # the oldest user was dropped
    assert limiter.retry_after("c") == 60


def test_bad_limits_are_refused_and_waits_read_well() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        AttemptLimiter(0, 60)
    assert seconds_text(0.2) == "1 second"
    assert seconds_text(40) == "40 seconds"
    assert seconds_text(540) == "9 minutes"

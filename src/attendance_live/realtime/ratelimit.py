"""A token bucket per connection: ``rate`` events a second, bursts up to ``burst``."""

from __future__ import annotations

import time

__all__ = ["TokenBucket"]


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens", "warned_at")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.warned_at = 0.0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def should_warn(self) -> bool:
        """At most one rate-limit error a second, so a flood is not answered by a flood."""
        now = time.monotonic()
        if now - self.warned_at >= 1.0:
            self.warned_at = now
            return True
        return False

"""A per-user limit on failed attempts (join codes): a sliding window, in memory, per node.

Small and self-contained on purpose, so a general rate limiter can replace it
later. A join code is 10 characters from a 31-letter alphabet (about 8 * 10^14
codes); at ``limit`` failures per ``window`` per user and per node, guessing
one takes a single user longer than the code can live. Memory is bounded:
users whose window has passed are forgotten, and at most ``max_users`` are
tracked (the oldest first are dropped).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["AttemptLimiter", "seconds_text"]


class AttemptLimiter:
    """At most ``limit`` failures per user in any ``window`` seconds."""

    def __init__(
        self,
        limit: int = 10,
        window: float = 600.0,
        *,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self.max_users = max_users
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, user_id: str) -> float:
        """Seconds until ``user_id`` may try again (0: now)."""
        failures = self._recent(user_id)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[0] + self.window - self._clock())

    def failed(self, user_id: str) -> None:
        """Count one failure of ``user_id``."""
        failures = self._recent(user_id)
        if failures is None:
            failures = self._failures[user_id] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_users:
                self._failures.popitem(last=False)
        failures.append(self._clock())
        self._failures.move_to_end(user_id)

    def _recent(self, user_id: str) -> deque[float] | None:
        failures = self._failures.get(user_id)
        if failures is None:
            return None
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[user_id]
            return None
        return failures


def seconds_text(seconds: float) -> str:
    """``seconds`` rounded up, in words (``"1 minute"``, ``"40 seconds"``)."""
    whole = max(1, math.ceil(seconds))
    if whole >= 120:
        return f"{math.ceil(whole / 60)} minutes"
    return "1 second" if whole == 1 else f"{whole} seconds"

"""Counting events per key in fixed windows: "at most ``count`` in ``seconds``".

One small API for every limit of the server (check-in code attempts, HTTP requests per
user and per address, and any other: join codes, sign-in attempts)::

    limiter: Limiter = service.limiter          # shared by every node when Redis is configured
    rate = Rate(count=10, seconds=60)
    verdict = await limiter.hit(f"join:{user_id}", rate)      # count one event
    if not verdict.allowed:
        raise RateLimited("too_many_attempts", "...; try again in a minute", verdict.retry_after)
    verdict = await limiter.peek(key, rate)     # would one more be allowed? (counts nothing)

A key's window starts at its first event and lasts ``rate.seconds``; ``hit`` answers
``allowed`` while the window holds at most ``rate.count`` events (this one included), and
``retry_after`` is the time left in the window. Fixed windows are crude at the edge (up to
twice ``count`` across a boundary) and cheap: one counter per key.

* :class:`MemoryLimiter`: this process only (one node; the per-node HTTP limits).
* :class:`RedisLimiter`: one counter for every node (``INCR`` and ``PEXPIRE NX`` in one
  ``MULTI``); while Redis cannot be reached it counts in memory, per node, and says so once
  in the log.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

__all__ = ["MAX_KEYS", "Limiter", "MemoryLimiter", "Rate", "RedisLimiter", "Verdict"]

log = logging.getLogger(__name__)

#: Keys a MemoryLimiter keeps at most (the oldest windows are dropped first).
MAX_KEYS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` events in ``seconds``."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or not self.seconds > 0:
            raise ValueError(f"a rate needs count >= 1 and seconds > 0, not {self.count}/{self.seconds}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a limiter says about a key: ``count`` events in its window so far."""

    allowed: bool
    count: int
    #: Seconds until the window ends and the key may go on (0 when allowed).
    retry_after: float

    @property
    def retry_after_header(self) -> str:
        """``Retry-After``'s value: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


class Limiter(Protocol):
    async def hit(self, key: str, rate: Rate) -> Verdict:
        """Count one event of ``key``; allowed while its window holds at most ``rate.count``."""
        ...

    async def peek(self, key: str, rate: Rate) -> Verdict:
        """Whether one more event of ``key`` would be allowed now; counts nothing."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Fixed windows in this process (``clock`` is monotonic seconds)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key -> (window end, count)

    def hit_now(self, key: str, rate: Rate) -> Verdict:
        """:meth:`hit`, synchronously (for a middleware's hot path)."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            end, count = now + rate.seconds, 1
            self._windows.pop(key, None)
            self._windows[key] = (end, count)
            if len(self._windows) > self.max_keys:
                self._shrink(now)
        else:
            end, count = window[0], window[1] + 1
            self._windows[key] = (end, count)
        return self._verdict(count, end, now, rate, counting=True)

    def peek_now(self, key: str, rate: Rate) -> Verdict:
        now = self.clock()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            return Verdict(True, 0, 0.0)
        return self._verdict(window[1], window[0], now, rate, counting=False)

    async def hit(self, key: str, rate: Rate) -> Verdict:
        return self.hit_now(key, rate)

    async def peek(self, key: str, rate: Rate) -> Verdict:
        return self.peek_now(key, rate)

    async def close(self) -> None:
        self._windows.clear()

    @staticmethod
    def _verdict(count: int, end: float, now: float, rate: Rate, *, counting: bool) -> Verdict:
        allowed = count <= rate.count if counting else count < rate.count
        return Verdict(allowed, count, 0.0 if allowed else max(0.0, end - now))

    def _shrink(self, now: float) -> None:
        for key in [key for key, (end, _) in self._windows.items() if end <= now]:
            del self._windows[key]
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)  # the oldest window


class RedisLimiter:
    """One counter per key for every node, in Redis (``prefix`` + key, expiring with its window)."""

    def __init__(self, url: str, *, prefix: str = "attendance-live:limit:") -> None:
        self.prefix = prefix
        self._redis: redis_asyncio.Redis = redis_asyncio.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self._fallback = MemoryLimiter()
        self._failing = False

    async def hit(self, key: str, rate: Rate) -> Verdict:
        name = self.prefix + key
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.pexpire(name, max(1, round(rate.seconds * 1000)), nx=True)
                pipe.pttl(name)
                count, _, ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            return self._degraded(exc).hit_now(key, rate)
        self._recovered()
        allowed = int(count) <= rate.count
        return Verdict(allowed, int(count), 0.0 if allowed else max(0, int(ttl)) / 1000)

    async def peek(self, key: str, rate: Rate) -> Verdict:
        """One ``GET`` (every code check-in peeks, and nearly every key is absent or below the
        limit); the window's time left is asked only when the answer is no."""
        name = self.prefix + key
        try:
            raw = await self._redis.get(name)
            count = int(raw) if raw is not None else 0
            ttl = 0 if count < rate.count else await self._redis.pttl(name)
        except (RedisError, OSError) as exc:
            return self._degraded(exc).peek_now(key, rate)
        self._recovered()
        allowed = count < rate.count
        return Verdict(allowed, count, 0.0 if allowed else max(0, int(ttl)) / 1000)

    async def close(self) -> None:
        await self._redis.aclose()

    def _degraded(self, exc: Exception) -> MemoryLimiter:
        if not self._failing:
            self._failing = True
            log.warning("Redis is unreachable (%s): limits count on this node alone", type(exc).__name__)
        return self._fallback

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("Redis is back: limits are counted for every node again")

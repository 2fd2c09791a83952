"""Collects the reference cycles that closed connections leave behind.

A closed connection's objects point at each other (websockets' protocol and its
parser, uvicorn's protocol and httptools' parser, our Engine.IO socket, its
channel and outbox), so reference counting never frees them: only Python's
cycle collector does. ``serve`` tunes that collector to run rarely (``cli``:
``gc.freeze()`` and high thresholds keep its pauses out of fan-outs), and under
steady churn it then hardly ran a full collection at all: the soak grew about
4 KiB per connection opened and closed, for as long as it ran (docs/performance.md,
"Soak").

``CycleCollector`` runs one full collection, on the event loop's next turn, each
time the connections closed since the last one reach half of those still open
(at least ``MIN_CLOSED``). A full collection's pause grows with the live
connections and its frequency falls with them, so its cost per closed connection
stays about the same at any size, and the garbage held is bounded by about half
the live connections' worth. A fan-out with nobody leaving never pays it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

__all__ = ["MIN_CLOSED", "CycleCollector"]

log = logging.getLogger(__name__)

# Fewest closed connections between two collections.
MIN_CLOSED = 1000


class CycleCollector:
    """Counts closed connections; collects cycles when enough have closed (see the module docstring)."""

    def __init__(self, live: Callable[[], int], *, min_closed: int = MIN_CLOSED) -> None:
        self.live = live
        self.min_closed = min_closed
        self.closed_since = 0
        #: Full collections run, and the objects they found unreachable (for tests and metrics).
        self.collections = 0
        self.collected = 0
        self._scheduled = False

    def closed(self) -> None:
        """A connection closed."""
        self.closed_since += 1
        if self._scheduled or self.closed_since < max(self.min_closed, self.live() // 2):
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._collect)

    def _collect(self) -> None:
        self._scheduled = False
        self.closed_since = 0
        started = time.perf_counter()
        found = gc.collect()
        self.collections += 1
        self.collected += found
        log.debug(
            "collected %d unreachable objects in %.1f ms (%d connections open)",
            found,
            (time.perf_counter() - started) * 1000,
            self.live(),
        )

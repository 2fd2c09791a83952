"""The relay's message between nodes: committed outbox rows on Redis, on a channel of their own.

Each node publishes its committed rows on ``CHANNEL`` (independent of the transport's adapter) as
one JSON message naming the node; ``decode_rows`` refuses anything that is not one of ours. The
``Publisher`` sends everything committed since its last publish as one message (at most
``PUBLISH_ROWS`` rows): a group of check-ins, whose callers all resume in one turn of the loop, is
one publish. What a node does with the rows it receives is ``realtime.relay``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from attendance_live.metrics import Metrics
from attendance_live.service.outbox import OutboxRow

__all__ = ["CHANNEL", "PUBLISH_ROWS", "Publisher", "decode_rows", "encode_rows"]

log = logging.getLogger(__name__)

CHANNEL: Final = "attendance-live:outbox"
# Most rows in one Redis message (a message is one JSON document every other node decodes at once).
PUBLISH_ROWS: Final = 1000


def encode_rows(node: str, rows: Sequence[OutboxRow]) -> bytes:
    return orjson.dumps({"node": node, "rows": [list(row) for row in rows]})


def decode_rows(raw: bytes | str) -> tuple[str, list[OutboxRow]]:
    """``(node, rows)``; ``ValueError`` when ``raw`` is not one of ours."""
    try:
        data = orjson.loads(raw)
        rows = [OutboxRow(int(p), str(c), str(k), dict(v)) for p, c, k, v in data["rows"]]
        return str(data["node"]), rows
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an outbox message ({type(exc).__name__})") from None


class Publisher:
    """This node's committed rows on their way to the other nodes: queued, then published together."""

    def __init__(self, redis: aioredis.Redis, node_id: str, metrics: Metrics) -> None:
        self.redis = redis
        self.node_id = node_id
        self.metrics = metrics
        self._rows: list[OutboxRow] = []  # committed here, not yet published
        self._queued = asyncio.Event()

    def put(self, rows: Sequence[OutboxRow]) -> None:
        self._rows.extend(rows)
        self._queued.set()

    async def run(self) -> None:
        """Publish what is queued, whenever something is, until cancelled."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._rows:
                rows = self._next()
                try:
                    await self.redis.publish(CHANNEL, encode_rows(self.node_id, rows))
                except (RedisError, OSError) as exc:
                    # The other nodes' polls read these rows from the database instead.
                    dropped = len(self._rows) + len(rows)
                    self._rows.clear()
                    self.metrics.errors.labels("redis_publish").inc()
                    log.warning(
                        "could not publish %d outbox row(s) (%s); other nodes read them from the outbox",
                        dropped,
                        type(exc).__name__,
                    )

    async def flush(self) -> None:
        """Publish everything still queued (on shutdown; an error reaches the caller)."""
        while self._rows:
            await self.redis.publish(CHANNEL, encode_rows(self.node_id, self._next()))

    def _next(self) -> list[OutboxRow]:
        rows = self._rows[:PUBLISH_ROWS]
        del self._rows[:PUBLISH_ROWS]
        return rows

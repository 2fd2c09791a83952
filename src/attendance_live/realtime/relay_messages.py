"""The relay's message between nodes: committed outbox rows on Redis, on a channel of their own.

Each node publishes its committed rows on ``CHANNEL`` (independent of the transport's adapter) as
one JSON message naming the node; ``decode_rows`` refuses anything that is not one of ours. What a
node does with the rows it receives is ``realtime.relay``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import orjson

from attendance_live.service.outbox import OutboxRow

__all__ = ["CHANNEL", "decode_rows", "encode_rows"]


CHANNEL: Final = "attendance-live:outbox"


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

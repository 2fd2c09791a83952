"""What every node must do about every node's domain events.

The notifier emits each event once, from the node where the change happened;
the transport's Redis adapter carries those broadcasts to every node. Some
effects, though, are local to each node and must happen on all of them:

* dropping cache entries the event made stale;
* taking a user whose enrollment was rejected or removed out of the
  course's room, for the sockets that user holds on *this* node.

``Cluster`` applies them for this node's events directly and, with Redis,
relays the events on a channel of their own so other nodes apply them too.
If Redis goes away, invalidations may be missed: the caches then run on a
time-to-live, and are cleared when the relay reconnects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from attendance_live.metrics import Metrics
from attendance_live.realtime.server import RealtimeServer
from attendance_live.service.cache import Caches
from attendance_live.service.events import (
    DomainEvent,
    EnrollmentChanged,
    RecordChanged,
    SessionEnded,
    SessionStarted,
)

__all__ = ["CHANNEL", "EVENT_TYPES", "Cluster", "decode_event", "encode_event"]

log = logging.getLogger(__name__)

EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (SessionStarted, SessionEnded, RecordChanged, EnrollmentChanged)
}
CHANNEL = "attendance-live:domain-events"


def encode_event(event: DomainEvent, origin: str) -> bytes:
    """The event for other nodes, without what only this node needs (``metadata={"relay": False}``)."""
    fields = {
        f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.metadata.get("relay", True)
    }
    return orjson.dumps({"type": type(event).__name__, "origin": origin, **fields})


def decode_event(raw: bytes | str) -> tuple[str, DomainEvent] | None:
    try:
        data = orjson.loads(raw)
        cls = EVENT_TYPES[data.pop("type")]
        origin = str(data.pop("origin"))
        return origin, cls(**data)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


class Cluster:
    def __init__(
        self,
        caches: Caches,
        realtime: RealtimeServer,
        metrics: Metrics,
        redis_url: str | None,
    ) -> None:
        self.caches = caches
        self.realtime = realtime
        self.metrics = metrics
        self.redis_url = redis_url
        self.node_id = uuid.uuid4().hex
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.redis_url is None:
            return
        self._redis = aioredis.Redis.from_url(
            self.redis_url, socket_connect_timeout=2, health_check_interval=15
        )
        self._listener = asyncio.create_task(self._listen(), name="cluster-relay")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def redis_state(self) -> str:
        """``ok`` or ``down: <why>``, for /readyz."""
        if self._redis is None:
            return "disabled"
        try:
            await asyncio.wait_for(self._redis.ping(), 2)
        except (RedisError, OSError, TimeoutError) as exc:
            self.metrics.redis_up.set(0)
            return f"down: {type(exc).__name__}"
        # Answering pings is not enough: events flow only once both listeners are back.
        if not self.subscribed.is_set() or not self.realtime.listening:
            self.metrics.redis_up.set(0)
            return "down: reconnecting (events from other nodes are not flowing yet)"
        self.metrics.redis_up.set(1)
        return "ok"

    # ----------------------------------------------------------------- events

    async def on_local_event(self, event: DomainEvent) -> None:
        """Bus subscriber on the node where the change committed."""
        await self._apply(event)  # caches were already updated by the service
        if self._redis is None:
            return
        try:
            await self._redis.publish(CHANNEL, encode_event(event, self.node_id))
        except (RedisError, OSError) as exc:
            self.metrics.errors.labels("redis_publish").inc()
            log.warning(
                "could not relay %s to other nodes (%s); their caches expire on their own",
                type(event).__name__,
                type(exc).__name__,
            )

    async def _on_remote_event(self, event: DomainEvent) -> None:
        self.caches.apply(event)
        await self._apply(event)

    async def _apply(self, event: DomainEvent) -> None:
        if isinstance(event, EnrollmentChanged) and event.status != "approved":
            self.realtime.remove_user_from_course(event.user_id, event.course_id)

    async def _listen(self) -> None:
        assert self._redis is not None
        delay = 0.25
        gap = False
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if gap:
                        log.info("Redis is back: relaying events again; caches cleared")
                        self.caches.clear()
                        gap = False
                    self.metrics.redis_up.set(1)
                    self.subscribed.set()
                    delay = 0.25
                    async for message in pubsub.listen():
                        decoded = decode_event(message.get("data", b""))
                        if decoded is None:
                            continue
                        origin, event = decoded
                        if origin != self.node_id:
                            await self._on_remote_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not gap:
                    log.warning("lost Redis (%s); retrying, caches now expire by time", type(exc).__name__)
                gap = True
                self.subscribed.clear()
                self.metrics.redis_up.set(0)
                self.caches.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

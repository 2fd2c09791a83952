"""The top rung of the adapter ladder: broadcasts to every node through one Redis pub/sub channel.

Each node publishes its broadcasts on ``channel`` and subscribes to it; what a
node receives from the others goes to its own members of the rooms named
(:mod:`.pubsub` has the message format, the retries and the resync hook).
Redis pub/sub keeps no backlog: a node that was not subscribed misses what was
published meanwhile, which is what ``on_resubscribed`` is for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .pubsub import PubSubAdapter, Subscription

__all__ = ["DEFAULT_CHANNEL", "RedisAdapter"]

DEFAULT_CHANNEL = "attendance-live:broadcasts"


class _RedisSubscription:
    def __init__(self, pubsub: aioredis.client.PubSub) -> None:
        self._pubsub = pubsub

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for message in self._pubsub.listen():
            if message.get("type") == "message":
                data = message["data"]
                yield data if isinstance(data, bytes) else str(data).encode()

    async def aclose(self) -> None:
        await self._pubsub.aclose()


class RedisAdapter(PubSubAdapter):
    """A :class:`~.pubsub.PubSubAdapter` on the Redis server at ``url``."""

    channel_errors = (RedisError, OSError, ConnectionError)

    def __init__(
        self,
        namespace: str,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        node_id: str | None = None,
        on_resubscribed: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        super().__init__(namespace, node_id=node_id, on_resubscribed=on_resubscribed)
        self.channel = channel
        # A short connect timeout: a publish during an outage fails fast instead of holding the queue.
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=15)

    async def _publish(self, message: bytes) -> None:
        await self._redis.publish(self.channel, message)

    async def _subscribe(self) -> Subscription:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
        except BaseException:
            await pubsub.aclose()
            raise
        return _RedisSubscription(pubsub)

    async def stop(self) -> None:
        await super().stop()
        await self._redis.aclose()

"""Fan-out to several nodes over a publish/subscribe channel: the middle rung of the adapter ladder.

After python-socketio's ``AsyncPubSubManager`` and Node's adapters. A
:class:`PubSubAdapter` keeps this node's rooms (it is an
:class:`~.adapter.InMemoryAdapter`) and, on :meth:`~PubSubAdapter.broadcast`,
writes the encoded packet to its own members at once and queues one message
for the other nodes: ``{node, ns, rooms, frames}``, the Engine.IO frames as
they were encoded, so no node encodes a packet again. A publisher task sends
the queue in order; a listener task hands every other node's message to
:meth:`~.adapter.Adapter.broadcast_local`. A broadcast never waits on the
channel.

Subclasses supply the channel (:mod:`.redis_adapter`): ``_publish(message)``
and ``_subscribe()``. The listener re-raises ``CancelledError``, logs
everything else and subscribes again within a second (the delay doubles from
0.25 s up to 1 s). ``listening`` says whether other nodes' broadcasts arrive
now. A channel such as Redis pub/sub keeps nothing for a node that was not
listening, so after a gap ``on_resubscribed`` runs: the application sends its
local rooms what they may have missed (a fresh snapshot). Messages that could
not be published are dropped and counted (``publish_failures``); the other
nodes are in the same gap and resynchronise the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Protocol

import orjson

from .adapter import InMemoryAdapter, Member
from .eio_packets import EncodedPacket, Frame

__all__ = ["PubSubAdapter", "Subscription", "decode_message", "encode_message"]

logger = logging.getLogger(__name__)

_FIRST_RETRY = 0.25
_LAST_RETRY = 1.0
# How long stop() may spend publishing what is still queued.
_FLUSH_TIMEOUT = 2.0


class Subscription(Protocol):
    """An open subscription to the channel: its messages, until it fails or is closed."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


def encode_message(node: str, namespace: str, rooms: list[str], packet: EncodedPacket) -> bytes:
    """One broadcast for the other nodes; binary frames travel as base64."""
    frames: list[str | dict[str, str]] = [
        frame if isinstance(frame, str) else {"b64": base64.b64encode(frame).decode("ascii")}
        for frame in packet
    ]
    return orjson.dumps({"node": node, "ns": namespace, "rooms": rooms, "frames": frames})


def decode_message(raw: bytes | str) -> tuple[str, str, list[str], EncodedPacket]:
    """``(node, namespace, rooms, packet)``; ``ValueError`` when ``raw`` is not one of ours."""
    try:
        data = orjson.loads(raw)
        frames: list[Frame] = [
            frame if isinstance(frame, str) else base64.b64decode(frame["b64"]) for frame in data["frames"]
        ]
        rooms = [str(room) for room in data["rooms"]]
        return str(data["node"]), str(data["ns"]), rooms, tuple(frames)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a broadcast message ({type(exc).__name__})") from None


class PubSubAdapter(InMemoryAdapter):
    """This node's rooms, and every broadcast relayed to the other nodes through a channel."""

    #: Errors that mean "the channel is unreachable": logged as one warning line. Anything else is
    #: logged with its traceback (a bug), and retried all the same.
    channel_errors: tuple[type[BaseException], ...] = (OSError, ConnectionError)

    def __init__(
        self,
        namespace: str,
        *,
        node_id: str | None = None,
        on_resubscribed: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        super().__init__()
        self.namespace = namespace
        self.node_id = node_id or uuid.uuid4().hex
        #: Runs (as a task) when the listener is back after a gap.
        self.on_resubscribed = on_resubscribed
        #: True while other nodes' broadcasts reach this node.
        self.listening = False
        #: Broadcasts that could not be published to the other nodes, since start.
        self.publish_failures = 0
        self._outgoing: deque[bytes] = deque()
        self._queued = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False

    # -- the channel, supplied by subclasses ---------------------------------------------

    @abstractmethod
    async def _publish(self, message: bytes) -> None:
        """Send one message to every node subscribed to the channel."""

    @abstractmethod
    async def _subscribe(self) -> Subscription:
        """Subscribe to the channel; return once the subscription is in place."""

    # -- Adapter -------------------------------------------------------------------------

    def broadcast(self, packet: EncodedPacket, rooms: Iterable[str], skip: Member | None = None) -> int:
        rooms = list(rooms)
        count = self.broadcast_local(packet, rooms, skip)
        if self._started:
            # ``skip`` is one of this node's sockets: the other nodes have nobody to skip.
            self._outgoing.append(encode_message(self.node_id, self.namespace, rooms, packet))
            self._queued.set()
        return count

    async def start(self) -> None:
        """Start the listener and the publisher; returns once the first subscription is in place
        or has failed (the listener then keeps retrying)."""
        if self._started:
            return
        self._started = True
        first = asyncio.get_running_loop().create_future()
        self._spawn(self._listen(first), "pubsub-listener")
        self._spawn(self._publish_queued(), "pubsub-publisher")
        await first

    async def stop(self) -> None:
        """Stop listening, publish what is still queued (for a short while), stop."""
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.listening = False
        try:
            async with asyncio.timeout(_FLUSH_TIMEOUT):
                while self._outgoing:
                    await self._publish(self._outgoing.popleft())
        except Exception as exc:
            self._drop_queued(exc, in_flight=1)

    # -- the two loops -------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_queued(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._outgoing:
                message = self._outgoing.popleft()
                try:
                    await self._publish(message)
                except asyncio.CancelledError:
                    self._outgoing.appendleft(message)  # stop() still tries to send it
                    raise
                except Exception as exc:
                    # Everything queued now would meet the same failure: drop it at once rather
                    # than wait a connect timeout per message. The listener is in a gap too.
                    self._drop_queued(exc, in_flight=1)

    def _drop_queued(self, exc: BaseException, *, in_flight: int) -> None:
        dropped = len(self._outgoing) + in_flight
        self._outgoing.clear()
        self.publish_failures += dropped
        if isinstance(exc, self.channel_errors):
            logger.warning(
                "could not publish %d broadcast(s) to the other nodes (%s); their clients get a fresh "
                "snapshot when the channel is back",
                dropped,
                type(exc).__name__,
            )
        else:
            logger.error("publishing %d broadcast(s) failed", dropped, exc_info=exc)

    async def _listen(self, first: asyncio.Future[None]) -> None:
        delay = _FIRST_RETRY
        gap = False
        while True:
            subscription: Subscription | None = None
            try:
                subscription = await self._subscribe()
                self.listening = True
                delay = _FIRST_RETRY
                if not first.done():
                    first.set_result(None)
                if gap:
                    gap = False
                    logger.info("the channel is back: other nodes' broadcasts flow again")
                    if self.on_resubscribed is not None:
                        self._spawn(self.on_resubscribed(), "pubsub-resync")
                async for message in subscription:
                    self._receive(message)
                raise ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                if not gap:
                    if isinstance(exc, self.channel_errors):
                        logger.warning(
                            "lost the channel to other nodes (%s): this node serves its own clients only; "
                            "retrying",
                            type(exc).__name__,
                        )
                    else:
                        logger.exception("the channel listener failed; retrying")
                gap = True
                if not first.done():
                    first.set_result(None)
            finally:
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        await subscription.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_RETRY)

    def _receive(self, raw: bytes) -> None:
        try:
            node, namespace, rooms, packet = decode_message(raw)
        except ValueError as exc:
            logger.warning("ignored a message on the channel: %s", exc)
            return
        if node != self.node_id and namespace == self.namespace:
            self.broadcast_local(packet, rooms, None)

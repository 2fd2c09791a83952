"""attendance-live's own real-time transport: Engine.IO v4 and Socket.IO v5.

Layers, bottom up (docs/transport.md tells the design):

* :mod:`.eio_packets`, :mod:`.sio_packets`: the two wire formats.
* :mod:`.outbox`, :mod:`.timers`: a bounded outgoing buffer per connection; one
  timer for every connection's deadlines.
* :mod:`.engine`: Engine.IO sessions, heartbeat, long-polling, the upgrade.
* :mod:`.ws_protocol`: websockets below ASGI, a protocol class for uvicorn's
  ``Config(ws=...)``; :mod:`.asgi`: long-polling over ASGI (and
  :mod:`.websocket`, websockets over ASGI as a fallback).
* :mod:`.adapter`, :mod:`.namespace`, :mod:`.server`: Socket.IO namespaces,
  sockets, rooms, events and acks; the handler API.
* :mod:`.pubsub`, :mod:`.redis_adapter`: the adapter ladder's upper rungs,
  broadcasts to every node over a pub/sub channel (Redis).
* :mod:`.fixture`: the official protocol suites' reference server.
"""

from __future__ import annotations

from .adapter import Adapter, InMemoryAdapter
from .asgi import EngineApp, uvicorn_options
from .engine import EngineServer, EngineSocket
from .namespace import (
    RESERVED_EVENTS,
    ConnectRefused,
    EncodedPacket,
    EventCheck,
    Namespace,
    Socket,
    encode_event,
)
from .pubsub import PubSubAdapter
from .redis_adapter import RedisAdapter
from .server import SocketServer
from .settings import TransportSettings

__all__ = [
    "RESERVED_EVENTS",
    "Adapter",
    "ConnectRefused",
    "EncodedPacket",
    "EngineApp",
    "EngineServer",
    "EngineSocket",
    "EventCheck",
    "InMemoryAdapter",
    "Namespace",
    "PubSubAdapter",
    "RedisAdapter",
    "Socket",
    "SocketServer",
    "TransportSettings",
    "encode_event",
    "uvicorn_options",
]

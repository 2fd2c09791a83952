"""The transport's settings: one frozen object, checked when it is built.

Defaults follow Node's engine.io and socket.io where they have one
(``pingInterval`` 25 s, ``pingTimeout`` 20 s, ``maxPayload`` 1 MB,
``connectTimeout`` 45 s, permessage-deflate off) and Centrifugo's
``client.queue_max_size`` (1 MiB) for the outgoing buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransportSettings"]


@dataclass(frozen=True, slots=True)
class TransportSettings:
    #: Engine.IO endpoint, with its trailing slash (Node's ``path``).
    path: str = "/socket.io/"
    ping_interval_ms: int = 25_000
    ping_timeout_ms: int = 20_000
    #: The largest message (websocket) or request body (polling) accepted; a larger one closes
    #: that connection.
    max_payload: int = 1_000_000
    #: Bytes waiting to be written to one connection before it counts as stalled and is closed.
    outgoing_buffer_bytes: int = 1024 * 1024
    #: A Socket.IO connection that has joined no namespace this long after its handshake is closed.
    connect_timeout_ms: int = 45_000
    #: ``("*",)`` answers any origin; an empty tuple sends no CORS headers.
    cors_allowed_origins: tuple[str, ...] = ()
    #: Whether an allowed origin may send credentials (cookies): Node's ``cors.credentials``.
    cors_credentials: bool = True
    allow_upgrades: bool = True
    #: One socket's events are handled one after the other (each after the previous finished).
    handlers_in_order: bool = True
    #: Events of one socket that may wait behind its running handler; more closes the connection.
    max_pending_events: int = 256
    #: Browsers offer permessage-deflate; it costs tens of KiB per connection, so it is off unless asked.
    per_message_deflate: bool = False

    def refuses_origin(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` header is refused: only with a list of origins
        (no ``*``), for an origin not in it. No header: not a browser's request, not refused."""
        allowed = self.cors_allowed_origins
        return origin is not None and bool(allowed) and "*" not in allowed and origin not in allowed

    def __post_init__(self) -> None:
        if not (self.path.startswith("/") and self.path.endswith("/")):
            raise ValueError(f"transport path {self.path!r}: start and end it with '/', e.g. '/socket.io/'")
        for name in (
            "ping_interval_ms",
            "ping_timeout_ms",
            "max_payload",
            "outgoing_buffer_bytes",
            "connect_timeout_ms",
            "max_pending_events",
        ):
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"transport setting {name}={value}: use a positive number")

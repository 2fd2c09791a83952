"""The Engine.IO endpoint as an ASGI application: HTTP long-polling and websockets.

Requests under ``settings.path`` are Engine.IO's; anything else goes to
``other_app`` (the HTTP API) or gets 404. Websockets arrive here only when
uvicorn is not given our protocol class (:func:`uvicorn_options` gives it). Query validation and the error
bodies follow Node's engine.io, which the official test suite checks:

====================================  ======  ==============================
request                               status  body
====================================  ======  ==============================
``EIO`` missing or not ``4``          400     code 5 Unsupported protocol version
``transport`` missing or unknown      400     code 0 Transport unknown
handshake by anything but GET         400     code 2 Bad handshake method
unknown ``sid``                       400     code 1 Session ID unknown
wrong transport for the session,
overlapping GETs or POSTs, bad body   400     code 3 Bad request
POST body over ``max_payload``        413     (the session is closed)
====================================  ======  ==============================
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from .engine import POLLING, WEBSOCKET, EngineServer, EngineSocket, RequestRefused
from .websocket import AsgiWebSocket
from .ws_protocol import websocket_protocol

__all__ = ["ASGIApp", "EngineApp", "Message", "Receive", "Scope", "Send", "uvicorn_options"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TEXT = (b"content-type", b"text/plain; charset=UTF-8")
_JSON = (b"content-type", b"application/json")


class EngineApp:
    """ASGI entry point of an :class:`~.engine.EngineServer`."""

    def __init__(self, engine: EngineServer, other_app: ASGIApp | None = None) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.other_app = other_app
        self._path = engine.settings.path
        self._path_bare = self._path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket") and scope["path"] in (self._path, self._path_bare):
            if kind == "http":
                await self._http(scope, receive, send)
            else:
                await self._websocket(scope, receive, send)
        elif self.other_app is not None:
            await self.other_app(scope, receive, send)
        elif kind == "http":
            await _respond(send, 404, b"Not Found", [_TEXT])
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif kind == "lifespan":
            await _lifespan(receive, send, self.engine)

    # -- HTTP long-polling ---------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        cors = self._cors_headers(scope)
        method = scope["method"]
        if method == "OPTIONS":
            await _respond(send, 204, b"", [*cors, *self._preflight_headers()])
            return
        try:
            self._check_origin(scope)
            query = _query(scope)
            transport = _check_query(query)
            if transport != POLLING:
                raise RequestRefused(
                    RequestRefused.BAD_REQUEST, "Bad request: websocket transport over plain HTTP"
                )
            sid = query.get("sid")
            if sid is None:
                if method != "GET":
                    raise RequestRefused(RequestRefused.BAD_HANDSHAKE_METHOD, "Bad handshake method")
                socket = self.engine.handshake(POLLING, _remote(scope), forwarded_for=_forwarded_for(scope))
                body = await socket.poll()
            else:
                socket = self.engine.lookup(sid)
                if method == "GET":
                    body = await socket.poll()
                elif method == "POST":
                    await self._post(socket, receive)
                    body = "ok"
                else:
                    raise RequestRefused(
                        RequestRefused.BAD_REQUEST, f"Bad request: method {method} on a session"
                    )
        except RequestRefused as refused:
            await _respond(send, refused.status, refused.body(), [_JSON, *cors])
            return
        await _respond(send, 200, body.encode(), [_TEXT, *cors])

    async def _post(self, socket: EngineSocket, receive: Receive) -> None:
        socket.begin_post()
        limit = self.settings.max_payload
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                socket.end_post(None)
                raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request: the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                socket.end_post(None)
                raise RequestRefused(
                    RequestRefused.BAD_REQUEST,
                    f"Payload too large: larger than the limit of {limit} bytes; the session is closed",
                    status=413,
                )
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            body = b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            socket.end_post(None)
            raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request: the body is not UTF-8") from None
        socket.end_post(body)

    def _cors_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        allowed = self.settings.cors_allowed_origins
        if not allowed:
            return []
        origin = _header(scope, b"origin")
        if origin is None:
            return [(b"access-control-allow-origin", b"*")] if "*" in allowed else []
        if "*" not in allowed and origin.decode("latin-1") not in allowed:
            return []
        headers = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if self.settings.cors_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    def _check_origin(self, scope: Scope) -> None:
        """With a list of origins (no ``*``), a browser request from any other origin is refused,
        as python-engineio does: CORS alone would only hide the answer from the page."""
        origin = _header(scope, b"origin")
        if origin is not None and self.settings.refuses_origin(origin.decode("latin-1")):
            raise RequestRefused(RequestRefused.BAD_REQUEST, "Not an accepted origin")

    def _preflight_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", b"content-type"),
            (b"access-control-max-age", b"86400"),
        ]

    # -- websocket -----------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._check_origin(scope)
            query = _query(scope)
            if _check_query(query) != WEBSOCKET:
                raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request: use transport=websocket")
        except RequestRefused as refused:
            logger.info("engine.io websocket refused: %s", refused.message)
            await send({"type": "websocket.close", "code": 1008})
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        channel = AsgiWebSocket(self.engine, receive, send)
        sid = query.get("sid")
        if sid is None:
            socket = self.engine.handshake(WEBSOCKET, _remote(scope), channel, _forwarded_for(scope))
            await channel.run(socket, None)
            return
        session = self.engine.sessions.get(sid)
        if session is None or session.transport != POLLING or session.upgrading:
            # Accepted, then closed: Node does the same, and a client sees a plain close.
            await send({"type": "websocket.close", "code": 1008})
            return
        await channel.run(None, session)


def uvicorn_options(*engines: EngineServer, below_asgi: bool = True) -> dict[str, Any]:
    """The ``uvicorn.Config`` options for serving ``engines``: websockets through our protocol
    class (:mod:`.ws_protocol`), or with ``below_asgi=False`` through ASGI on uvicorn's sans-I/O
    implementation; permessage-deflate as the settings say; the payload limit; and no
    websocket-level pings (Engine.IO's heartbeat already watches every connection)."""
    settings = engines[0].settings
    return {
        "ws": websocket_protocol(*engines) if below_asgi else "websockets-sansio",
        "ws_per_message_deflate": settings.per_message_deflate,
        "ws_max_size": max(engine.settings.max_payload for engine in engines),
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
    }


def _query(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {key: values[0] for key, values in parsed.items()}


def _check_query(query: dict[str, str]) -> str:
    if query.get("EIO") != "4":
        raise RequestRefused(RequestRefused.UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
    transport = query.get("transport")
    if transport not in (POLLING, WEBSOCKET):
        raise RequestRefused(RequestRefused.UNKNOWN_TRANSPORT, "Transport unknown")
    return transport


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _remote(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _forwarded_for(scope: Scope) -> tuple[str, ...]:
    """Every ``X-Forwarded-For`` value of the handshake request, in order."""
    return tuple(
        value.decode("latin-1") for key, value in scope.get("headers", ()) if key == b"x-forwarded-for"
    )


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send, engine: EngineServer) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            engine.close()
            await send({"type": "lifespan.shutdown.complete"})
            return

"""Edge checks and security headers for every HTTP response (a plain ASGI middleware).

Outermost in the stack, before Socket.IO and FastAPI, so that nothing behind
it sees a request it would mishandle:

* a request target longer than ``MAX_URI_BYTES`` is a 414;
* a path holding a NUL or another control character, or a segment longer
  than a file name can be (255 bytes), is a 404: the dashboard's file lookups
  behind would raise on it (and an OSError reads as "database down" there);
* a body larger than ``MAX_BODY_BYTES`` is a 413 before anything reads it:
  at once from ``Content-Length``, or, for a chunked body, as soon as the
  bytes received pass the cap. Socket.IO's long-polling POSTs have their own,
  smaller limit (``MAX_MESSAGE_BYTES``, see ``RealtimeServer.asgi_guard``).

Every response gets ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer`` and one strict Content-Security-Policy (no
inline script, same-origin only): the dashboard and the API docs (served from
the package by ``api/docs.py``) need nothing else. ``FRAME_ANCESTORS`` (default ``'none'``) says
who may frame the dashboard, for an LMS that embeds it.

Below ASGI, :func:`header_timeout_protocol` closes connections whose request
headers never complete (``HEADER_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_SEGMENT_BYTES", "MAX_URI_BYTES", "Hardening", "dashboard_policy", "header_timeout_protocol"]

MAX_URI_BYTES: Final = 4096
MAX_SEGMENT_BYTES: Final = 255


def dashboard_policy(frame_ancestors: str, connect_origins: Sequence[str] = ()) -> str:
    """The Content-Security-Policy of the dashboard and the API.

    ``connect_origins``: other origins the dashboard may fetch from (the OpenID
    Provider's, for discovery, the token endpoint and renewals).
    """
    connect = " ".join(["'self'", *connect_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src {connect}; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


class _TooLarge(Exception):
    pass


class Hardening:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        frame_ancestors: str = "'none'",
        connect_origins: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        framing = {"'none'": b"DENY", "'self'": b"SAMEORIGIN"}.get(frame_ancestors)
        if framing is not None:  # for browsers without CSP frame-ancestors
            common.append((b"x-frame-options", framing))
        self._strict = [
            *common,
            (b"content-security-policy", dashboard_policy(frame_ancestors, connect_origins).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        target = len(scope.get("raw_path") or path.encode()) + len(scope.get("query_string", b""))
        if scope["type"] == "websocket":
            if target > MAX_URI_BYTES or not path.isprintable():
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        send = self._with_headers(send, self._strict)
        if target > MAX_URI_BYTES:
            await _answer(send, 414, f"The request URI is longer than {MAX_URI_BYTES} bytes; shorten it")
            return
        if not path.isprintable() or any(len(part.encode()) > MAX_SEGMENT_BYTES for part in path.split("/")):
            await _answer(send, 404, f"No such endpoint: {path[:80]!r}; see /docs")
            return
        if path.startswith("/socket.io"):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _answer(send, 413, self._too_large())
            return
        if length is None and _chunked(scope):
            try:
                receive = await self._buffered(receive)
            except _TooLarge:
                await _answer(send, 413, self._too_large())
                return
        await self.app(scope, receive, send)

    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes (MAX_BODY_BYTES); send less"

    async def _buffered(self, receive: Receive) -> Receive:
        """Read a body of unknown length up to the cap, then replay it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed

    @staticmethod
    def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        return sending


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


async def _answer(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header_timeout_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers are not complete
    within ``seconds`` of the connection (or of the request's first byte).

    uvicorn waits for ever on a connection that sends nothing, or headers a byte at
    a time (slowloris); its keep-alive timeout only runs between requests. Passed as
    ``uvicorn.Config(http=...)``, uvicorn's public seam for the protocol class.
    """

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self.header_timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _expired(self) -> None:
            self.header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol

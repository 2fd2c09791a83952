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

Below ASGI, :func:`http_protocol` bounds every request head: it closes connections whose
request headers never complete (``HEADER_TIMEOUT_SECONDS``) and answers 431 to a head larger
than ``HTTP_MAX_HEADER_BYTES`` or with more than ``HTTP_MAX_HEADERS`` fields.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "LINGER_SECONDS",
    "MAX_SEGMENT_BYTES",
    "MAX_URI_BYTES",
    "Hardening",
    "dashboard_policy",
    "http_protocol",
]

MAX_URI_BYTES: Final = 4096
MAX_SEGMENT_BYTES: Final = 255
# How long a connection refused for its head is still read (and the bytes dropped) before it
# is closed.
LINGER_SECONDS: Final = 2.0


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
                if b"content-security-policy" in present:
                    # A response with its own policy (an LMS may frame the tool) owns its
                    # framing: X-Frame-Options would contradict its frame-ancestors.
                    present.add(b"x-frame-options")
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


def http_protocol(
    *, header_timeout: float, max_header_bytes: int, max_headers: int
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the request head bounded in time, size and count.

    Passed as ``uvicorn.Config(http=...)``, uvicorn's public seam for the protocol class
    (``Application.uvicorn_options()`` does it wherever the app is served). Every request,
    a websocket upgrade included (uvicorn parses its head before handing it to the
    transport), is held to:

    * ``header_timeout``: a connection whose request head is not complete within that many
      seconds of the connection (or of the request's first byte) is closed. uvicorn waits
      for ever on a connection that sends nothing, or headers a byte at a time (slowloris);
      its keep-alive timeout only runs between requests.
    * ``max_header_bytes`` (``HTTP_MAX_HEADER_BYTES``): the request line and the header fields
      together; past it the answer is 431 (414 when the request line alone is too long) and
      the connection is closed before anything more is read. httptools buffers a header
      field whole before it reports it, so the bytes of an unfinished head are counted as
      they arrive: at most one read (256 KiB with uvloop) beyond the limit is ever held.
    * ``max_headers`` (``HTTP_MAX_HEADERS``): the number of header fields, 431 past it.
    """

    class BoundedHttpProtocol(HttpToolsProtocol):
        header_timer: asyncio.TimerHandle | None = None
        # The request head being read: True from the connection (or the end of the previous
        # request) until its headers are complete.
        head_open: bool = True
        head_bytes: int = 0
        head_fields: int = 0
        head_counted: int = 0
        head_refusal: tuple[int, str] | None = None
        # After a refusal: what the client still sends is read and dropped until it stops or
        # LINGER_SECONDS pass, so that closing does not reset the connection (a reset can
        # destroy the answer before the client has read it), as nginx's lingering close.
        lingering: bool = False

        def _arm(self) -> None:
            self._disarm()
            self.header_timer = self.loop.call_later(header_timeout, self._expired)

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

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.lingering:
                return
            if self.head_open:
                self.head_bytes += len(data)
            super().data_received(data)
            if self.head_open and self.head_bytes > max_header_bytes and not self.transport.is_closing():
                # Still no end of the head, and already more than a whole head may be.
                self._refuse_head(431, self._too_large())

        # -- parser callbacks -------------------------------------------------------------

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.head_open = True
            self.head_fields = self.head_counted = 0
            self._arm()

        def on_url(self, url: bytes) -> None:
            self.head_counted += len(url)
            if self.head_counted > max_header_bytes:
                self.head_refusal = (
                    414,
                    f"The request line is longer than {max_header_bytes} bytes "
                    "(HTTP_MAX_HEADER_BYTES); shorten the URL",
                )
                raise _HeadRefused
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.head_fields += 1
            self.head_counted += len(name) + len(value) + 4  # ": " and CRLF
            if self.head_fields > max_headers:
                self.head_refusal = (
                    431,
                    f"The request has more than {max_headers} header fields (HTTP_MAX_HEADERS); send fewer",
                )
                raise _HeadRefused
            if self.head_counted > max_header_bytes:
                self.head_refusal = (431, self._too_large())
                raise _HeadRefused
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._disarm()
            self.head_open = False
            self.head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.head_open = True  # what follows is the next request's head

        def send_400_response(self, msg: str) -> None:
            # A callback above refused the head: the parser stopped and uvicorn reports it
            # as an invalid request; answer with the reason instead.
            if self.head_refusal is not None:
                self._refuse_head(*self.head_refusal)
                return
            super().send_400_response(msg)

        @staticmethod
        def _too_large() -> str:
            return (
                f"The request line and headers are larger than {max_header_bytes} bytes "
                "(HTTP_MAX_HEADER_BYTES); send smaller headers (cookies, tokens)"
            )

        def _refuse_head(self, status: int, detail: str) -> None:
            self._disarm()
            self.head_open = False
            self.lingering = True
            body = orjson.dumps({"detail": detail})
            reason = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}[status]
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
            )
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self.header_timer = self.loop.call_later(LINGER_SECONDS, self._expired)
            else:
                self.transport.close()

    return BoundedHttpProtocol


class _HeadRefused(Exception):
    """Raised from a parser callback: httptools stops parsing and reports a callback error."""

"""The reference server of the official Engine.IO and Socket.IO protocol test suites.

``python -m attendance_live.transport.fixture [--port 3000]`` (or
``scripts/protocol-fixture``) serves, from this package only, what the suites'
READMEs describe (``../shared/conformance/README.md``):

* ``/engine.io/``: an Engine.IO server that sends every message back to its sender;
* ``/socket.io/``: a Socket.IO server with namespaces ``/`` and ``/custom``; on
  connection each emits ``auth`` with the handshake's auth payload; ``message``
  is answered by ``message-back`` with the same arguments, and
  ``message-with-ack`` is acknowledged with them (binary stays binary);

both with ``pingInterval`` 300 ms, ``pingTimeout`` 200 ms, ``maxPayload``
1,000,000, a connect timeout of 1,000 ms and CORS open. It listens on the
loopback addresses (IPv4 and IPv6: Node resolves ``localhost`` to either) and
runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from typing import Any

import uvicorn

from .asgi import EngineApp, uvicorn_options
from .eio_packets import message_frame
from .engine import EngineServer, EngineSocket
from .namespace import Socket
from .server import SocketServer
from .settings import TransportSettings

__all__ = ["EchoHandler", "build_app", "build_socketio", "main"]


def _settings(path: str) -> TransportSettings:
    return TransportSettings(
        path=path,
        ping_interval_ms=300,
        ping_timeout_ms=200,
        max_payload=1_000_000,
        connect_timeout_ms=1_000,
        cors_allowed_origins=("*",),
    )


class EchoHandler:
    """The Engine.IO suite's server: every message goes back to its sender."""

    def on_open(self, socket: EngineSocket) -> None:
        pass

    def on_message(self, socket: EngineSocket, data: str | bytes) -> None:
        socket.send(message_frame(data))

    def on_close(self, socket: EngineSocket, reason: str) -> None:
        pass


def build_socketio() -> SocketServer:
    server = SocketServer(_settings("/socket.io/"))
    for name in ("/", "/custom"):
        namespace = server.namespace(name)

        @namespace.on_connect
        def greet(socket: Socket, auth: dict[str, Any]) -> None:
            socket.emit("auth", auth)

        @namespace.on("message")
        def echo(socket: Socket, *args: Any) -> None:
            socket.emit("message-back", *args)

        @namespace.on("message-with-ack")
        def acknowledge(socket: Socket, *args: Any) -> tuple[Any, ...]:
            return args

    return server


def build_app() -> tuple[EngineApp, list[EngineServer]]:
    """``/engine.io/`` in front of ``/socket.io/``, as one ASGI application; and both engines
    (for the websocket protocol class)."""
    socketio = build_socketio()
    echo = EngineServer(EchoHandler(), _settings("/engine.io/"))
    return EngineApp(echo, other_app=socketio.asgi_app()), [echo, socketio.engine]


def _listen(host: str, port: int, family: socket.AddressFamily) -> socket.socket | None:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        if family == socket.AF_INET6:
            return None  # no IPv6 loopback on this machine: IPv4 alone will do
        raise
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="protocol-fixture", description="The protocol test suites' reference server, on our transport."
    )
    parser.add_argument("--port", type=int, default=3000, help="port on 127.0.0.1 and ::1 (default 3000)")
    parser.add_argument(
        "--websocket",
        choices=("protocol", "asgi"),
        default="protocol",
        help="websockets through our protocol class below ASGI (default) or through ASGI",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sockets = [
        s
        for s in (
            _listen("127.0.0.1", arguments.port, socket.AF_INET),
            _listen("::1", arguments.port, socket.AF_INET6),
        )
        if s is not None
    ]
    app, engines = build_app()
    options = uvicorn_options(*engines, below_asgi=arguments.websocket == "protocol")
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **options)
    print(
        f"protocol fixture on http://localhost:{arguments.port} (/engine.io/, /socket.io/), "
        f"websockets via {arguments.websocket}",
        flush=True,
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=sockets))


if __name__ == "__main__":
    main()

"""The floor: the least a server can do for the fan-out and storm scenarios.

A minimal websocket server on asyncio + uvloop (raw protocol, no framework, no
Engine.IO): it accepts plain websocket upgrades on any GET path, writes one
pre-encoded ``42["activeSessionsData",{...}]`` frame right after the upgrade
(the "snapshot" of the storm scenario), and on ``POST /trigger`` writes the same
pre-encoded ``42["courseSessionStarted",{...}]`` frame to every connection.
The load generator measures it exactly as it measures the Socket.IO servers.

    python floor.py --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import resource
import signal

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


def packet(event: str, data: dict[str, object]) -> bytes:
    return b"42" + json.dumps([event, data], separators=(",", ":")).encode()


STARTED = server_frame(
    packet(
        "courseSessionStarted",
        {
            "course_id": "bench-course",
            "session_id": "3f2b8c1e-6d0a-4c55-9a57-1b2f0e4d9a10",
            "teacher_id": "bench-teacher",
            "teacher_name": "Bench Teacher",
            "started_by": "Bench Teacher",
            "started_at": "2024-01-15T10:30:00.000Z",
            "topic": None,
        },
    )
)
SNAPSHOT = server_frame(packet("activeSessionsData", {"course_id": "bench-course", "activeSessions": []}))

clients: set[asyncio.Transport] = set()


class FloorProtocol(asyncio.Protocol):
    __slots__ = ("buf", "transport", "ws")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.ws = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ws:
            clients.discard(self.transport)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.ws:
            if data and data[0] & 0x0F == 8:  # a close frame: good-bye
                self.transport.close()  # type: ignore[union-attr]
            return  # the floor ignores everything else the clients send
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1")
        self.buf = b""
        lines = head.split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        t = self.transport
        assert t is not None
        if method == "GET" and headers.get("upgrade", "").lower() == "websocket":
            accept = base64.b64encode(
                hashlib.sha1(headers["sec-websocket-key"].encode() + GUID, usedforsecurity=False).digest()
            )
            t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + SNAPSHOT
            )
            self.ws = True
            clients.add(t)
            return
        if method == "POST" and path == "/trigger":
            frame = STARTED
            for c in clients:
                c.write(frame)
            body = json.dumps({"sent": len(clients)}).encode()
            status = b"200 OK"
        elif path in ("/healthz", "/readyz"):
            body, status = b'{"status":"ok"}', b"200 OK"
        else:
            body, status = b'{"detail":"Not Found"}', b"404 Not Found"
        t.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        # keep-alive: the next request on this connection is parsed afresh


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorProtocol, host, port, backlog=2048)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"floor listening on http://{host}:{port}", flush=True)
    gc.freeze()
    await stop.wait()
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.host, args.port))

"""Broadcast cost: our transport against python-socketio, one room of N websockets.

Each server kind runs in its own process with one namespace and one event,
``join`` (enter the room ``bench``, acked). This process opens N raw websocket
clients (a small ``asyncio.Protocol`` each: RFC 6455, Engine.IO 4, Socket.IO
5, nothing more), joins them all, then asks the server (a line on its stdin)
for one broadcast of a ~250-byte event at a time, waiting until every client
has it. Reported per kind: the server's CPU per broadcast (utime + stime of
its process from /proc, over all rounds) and per recipient, the median and
worst time from the request to the last arrival, and the server's resident
memory per joined connection (VmRSS after joining minus before, over N).

Kinds:

* ``ours``      our transport, websockets through the protocol class (the default cut)
* ``ours-deflate`` the same with permessage-deflate enabled (the clients offer it)
* ``ours-asgi`` our transport, websockets through ASGI (uvicorn websockets-sansio)
* ``socketio``  python-socketio as shipped (AsyncServer.emit to a room)
* ``floor``     no server library: a raw asyncio protocol that fakes the handshakes and
                writes one pre-serialised websocket frame to each joined socket

    .venv/bin/python bench/transport_fanout.py -n 1000 --rounds 20

Indicative only: client and server share the machine's cores. Bounded: N is
at most 2,000, loopback only, and every process stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import zlib
from typing import Any

KINDS = ("ours", "ours-deflate", "ours-asgi", "socketio", "floor")
EVENT = {
    "course_id": "bench-course",
    "session_id": "3f2b8c1e-6d0a-4c55-9a57-1b2f0e4d9a10",
    "teacher_id": "bench-teacher",
    "teacher_name": "Bench Teacher",
    "started_by": "Bench Teacher",
    "started_at": "2024-01-15T10:30:00.000Z",
    "topic": None,
}
MAX_N = 2000


# ---------------------------------------------------------------- the server side


def serve_floor(port: int) -> None:
    """The least a server can do: the same bytes written to every joined socket."""
    import base64
    import hashlib

    from websockets.frames import Frame as WsFrame
    from websockets.frames import Opcode

    def frame(text: str) -> bytes:
        return WsFrame(Opcode.TEXT, text.encode()).serialize(mask=False)

    tick = frame('42["tick",' + json.dumps(EVENT, separators=(",", ":")) + "]")
    joined: list[asyncio.Transport] = []

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport, self.buffer, self.upgraded = transport, b"", False

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            if not self.upgraded:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in self.buffer[:end].split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key")
                )
                accept = base64.b64encode(
                    hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # noqa: S324 (RFC 6455)
                )
                self.transport.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + frame('0{"sid":"floor"}')
                )
                self.upgraded, self.buffer = True, self.buffer[end + 4 :]
            # Client frames here are small and masked with zeros: the payload starts at byte 6.
            while len(self.buffer) >= 6 and len(self.buffer) >= 6 + (self.buffer[1] & 0x7F):
                n = self.buffer[1] & 0x7F
                text, self.buffer = self.buffer[6 : 6 + n], self.buffer[6 + n :]
                if text == b"40":
                    self.transport.write(frame('40{"sid":"floor"}'))
                elif text.startswith(b"421"):
                    self.transport.write(frame('431["ok"]'))
                    joined.append(self.transport)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Floor, "127.0.0.1", port)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while (await reader.readline()).decode().strip() == "broadcast":
            for transport in joined:
                transport.write(tick)
        server.close()

    asyncio.run(main())


def serve(kind: str, port: int) -> None:
    if kind == "floor":
        serve_floor(port)
        return
    import uvicorn

    if kind.startswith("ours"):
        from attendance_live.transport import Socket, SocketServer, TransportSettings, uvicorn_options

        server = SocketServer(TransportSettings(per_message_deflate=kind == "ours-deflate"))
        lobby = server.namespace("/")

        @lobby.on("join")
        def join(socket: Socket) -> str:
            socket.join("bench")
            return "ok"

        async def broadcast() -> None:
            lobby.broadcast(lobby.encode("tick", EVENT), to="bench")

        app: Any = server.asgi_app()
        options = uvicorn_options(server.engine, below_asgi=kind != "ours-asgi")
    else:
        import socketio

        sio = socketio.AsyncServer(async_mode="asgi")

        async def join_room(sid: str) -> str:
            await sio.enter_room(sid, "bench")
            return "ok"

        sio.on("join", join_room)

        async def broadcast() -> None:
            await sio.emit("tick", EVENT, room="bench")

        app = socketio.ASGIApp(sio)
        options = {"ws": "websockets-sansio", "ws_per_message_deflate": False}

    async def main() -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "broadcast":
                await broadcast()
            elif line == "quit":
                break
        server.should_exit = True
        await serving

    asyncio.run(main())


# ---------------------------------------------------------------- the client side


def _client_frame(text: str) -> bytes:
    payload = text.encode()
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload  # the all-zero mask: valid, and masking is free


class Client(asyncio.Protocol):
    """One raw Socket.IO websocket client; counts ``tick`` events."""

    def __init__(self, port: int, joined: asyncio.Future[None], deflate: bool) -> None:
        self.port = port
        self.deflate = deflate
        # permessage-deflate with context takeover: one decompressor for the connection's life.
        self.inflater = zlib.decompressobj(wbits=-15)
        self.joined = joined
        self.buffer = b""
        self.upgraded = False
        self.ticks = 0
        self.tick_waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            + (b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.deflate else b"")
            + b"\r\n"
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.upgraded, self.buffer = True, self.buffer[end + 4 :]
        while len(self.buffer) >= 2:
            n = self.buffer[1] & 0x7F
            start = 2
            if n == 126:
                if len(self.buffer) < 4:
                    return
                n, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif n == 127:
                if len(self.buffer) < 10:
                    return
                n, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + n:
                return
            opcode, compressed = self.buffer[0] & 0x0F, self.buffer[0] & 0x40
            payload, self.buffer = self.buffer[start : start + n], self.buffer[start + n :]
            if compressed:
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            if opcode == 1:
                self.message(payload.decode())

    def message(self, text: str) -> None:
        assert self.transport is not None
        if text == "2":
            self.transport.write(_client_frame("3"))
        elif text.startswith("0"):
            self.transport.write(_client_frame("40"))
        elif text.startswith("40"):
            self.transport.write(_client_frame('421["join"]'))
        elif text.startswith("431"):
            self.joined.set_result(None)
        elif text.startswith('42["tick"'):
            self.ticks += 1
            if self.tick_waiter is not None and not self.tick_waiter.done():
                self.tick_waiter.set_result(None)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(kind: str, n: int, rounds: int, port: int) -> dict[str, float]:
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "serve", kind, "--port", str(port), stdin=asyncio.subprocess.PIPE
    )
    stdin = server.stdin
    assert stdin is not None
    try:
        loop = asyncio.get_running_loop()
        for _ in range(100):
            try:
                _, probe = await asyncio.open_connection("127.0.0.1", port)
                probe.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        rss_before = rss_kib(server.pid)
        clients: list[Client] = []
        for start in range(0, n, 100):  # 100 handshakes in flight at most
            batch = []
            for _ in range(start, min(n, start + 100)):
                joined: asyncio.Future[None] = loop.create_future()
                client = Client(port, joined, deflate=kind == "ours-deflate")
                await loop.create_connection(lambda client=client: client, "127.0.0.1", port)  # type: ignore[misc]
                clients.append(client)
                batch.append(joined)
            async with asyncio.timeout(60):
                await asyncio.gather(*batch)

        async def one_broadcast() -> float:
            expected = clients[0].ticks + 1
            for client in clients:
                client.tick_waiter = loop.create_future() if client.ticks < expected else None
            began = time.perf_counter()
            stdin.write(b"broadcast\n")
            await stdin.drain()
            async with asyncio.timeout(60):
                await asyncio.gather(*(c.tick_waiter for c in clients if c.tick_waiter is not None))
            return time.perf_counter() - began

        for _ in range(3):  # warm-up
            await one_broadcast()
        rss_per_connection = (rss_kib(server.pid) - rss_before) / n
        cpu_before = cpu_seconds(server.pid)
        durations = [await one_broadcast() for _ in range(rounds)]
        cpu = (cpu_seconds(server.pid) - cpu_before) / rounds
        assert all(client.ticks == rounds + 3 for client in clients), "a client missed a broadcast"
        for client in clients:
            assert client.transport is not None
            client.transport.abort()
        return {
            "cpu_ms": cpu * 1000,
            "cpu_us_per_recipient": cpu * 1e6 / n,
            "median_ms": statistics.median(durations) * 1000,
            "max_ms": max(durations) * 1000,
            "rss_kib": rss_per_connection,
        }
    finally:
        stdin.write(b"quit\n")
        await stdin.drain()
        try:
            async with asyncio.timeout(10):
                await server.wait()
        except TimeoutError:
            server.kill()
            await server.wait()


async def run(kinds: list[str], n: int, rounds: int, port: int) -> None:
    print(f"N={n} websockets in one room, {rounds} broadcasts each (after 3 warm-up), {os.cpu_count()} cores")
    print(
        f"{'kind':<13} {'CPU/broadcast':>14} {'CPU/recipient':>14} {'last arrival p50':>17} {'max':>9}"
        f" {'RSS/connection':>15}"
    )
    results = {}
    for kind in kinds:
        results[kind] = result = await measure(kind, n, rounds, port)
        print(
            f"{kind:<13} {result['cpu_ms']:>11.2f} ms {result['cpu_us_per_recipient']:>11.2f} µs"
            f" {result['median_ms']:>14.2f} ms {result['max_ms']:>6.1f} ms {result['rss_kib']:>11.1f} KiB",
            flush=True,
        )
    if "ours" in results and "socketio" in results:
        print(f"ours / socketio CPU: {results['ours']['cpu_ms'] / results['socketio']['cpu_ms']:.2f}")
    if "ours" in results and "floor" in results:
        print(f"ours / floor CPU: {results['ours']['cpu_ms'] / results['floor']['cpu_ms']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="(internal) run one server kind, driven by stdin")
    server.add_argument("kind", choices=KINDS)
    server.add_argument("--port", type=int, required=True)
    parser.add_argument("-n", type=int, default=1000, help=f"websockets in the room (at most {MAX_N})")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--port", type=int, default=4310)
    arguments = parser.parse_args()
    if arguments.command == "serve":
        serve(arguments.kind, arguments.port)
        return
    if not 1 <= arguments.n <= MAX_N:
        parser.error(f"-n {arguments.n}: use 1 to {MAX_N}; this is a micro-benchmark for a shared machine")
    kinds = arguments.kinds.split(",")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"--kinds: unknown {sorted(unknown)}; choose from {', '.join(KINDS)}")
    asyncio.run(run(kinds, arguments.n, arguments.rounds, arguments.port))


if __name__ == "__main__":
    main()

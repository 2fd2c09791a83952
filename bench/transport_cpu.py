"""CPU per operation of the transport's Python code, in one process, without sockets.

The load benchmarks (``run.py``) measure whole servers through the kernel and the load
generator, whose numbers move with whatever else the machine runs. This one feeds our
websocket protocol class (the one uvicorn's ``Config(ws=...)`` gets) request heads and
client frames directly and gives it a transport whose ``write`` only counts, so what it
reports is the Python work of each step, as process CPU time (best of several repeats),
which other processes on the machine barely move:

* ``broadcast``       one ~250-byte event to a room of N sockets, per recipient
* ``ws+eio open``     a websocket upgrade and the Engine.IO OPEN packet, per connection
* ``sio connect``     a Socket.IO CONNECT with ``auth`` (a connect handler that accepts),
                      per connection, including the handler's task
* ``token, new``      ``TokenService.check`` of a token never seen (PyJWT, HS256)
* ``token, again``    the same token once more (kept until its ``exp``)

    .venv/bin/python bench/transport_cpu.py            # N=10,000
    .venv/bin/python bench/transport_cpu.py -n 2000

What it leaves out: uvicorn's HTTP parsing before the upgrade, the event loop's and the
kernel's work per socket, and the application's handlers; ``run.py`` has those.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import struct
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import jwt

from attendance_live.auth.tokens import TokenService
from attendance_live.transport import Socket, SocketServer, TransportSettings
from attendance_live.transport.ws_protocol import EngineWebSocketProtocol, websocket_protocol

# The same ~250-byte event as the fan-out benchmark beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transport_fanout import EVENT

REQUEST = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nhost: 127.0.0.1:4002\r\n"
    b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"sec-websocket-version: 13\r\n\r\n"
)
SECRET = "b" * 48


def client_frame(payload: bytes) -> bytes:
    """A masked text frame with the all-zero mask."""
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0x80 | 126)) + struct.pack("!H", n)
    return head + b"\0\0\0\0" + payload


class CountingTransport(asyncio.Transport):
    """Just enough of an asyncio transport: writes are counted, not sent."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def best_of(repeats: int, count: int, step: Callable[[], object]) -> float:
    """The lowest process CPU seconds per call of ``step`` over ``repeats`` runs of ``count``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(count):
            step()
        best = min(best, (time.process_time() - started) / count)
    return best


async def measure(n: int, repeats: int) -> dict[str, float]:
    server = SocketServer(TransportSettings(ping_interval_ms=600_000, ping_timeout_ms=600_000))
    lobby = server.namespace("/")

    @lobby.on_connect
    async def admit(socket: Socket, auth: dict[str, Any]) -> None:
        socket.data = auth.get("token")

    @lobby.on("join")
    def join(socket: Socket) -> None:
        socket.join("room")

    protocol_class = cast(type[EngineWebSocketProtocol], websocket_protocol(server.engine))
    state = SimpleNamespace(connections=set())
    auth_frame = client_frame(b'40{"token":"' + b"t" * 200 + b'"}')

    def opened() -> EngineWebSocketProtocol:
        protocol = protocol_class(config=None, server_state=state, app_state={})
        protocol.connection_made(CountingTransport())
        protocol.data_received(REQUEST)
        return protocol

    results: dict[str, float] = {}
    results["ws+eio open"] = best_of(repeats, 1000, opened)

    # Socket.IO CONNECT: the handler runs in a task, so each repeat lets the loop run it.
    best = float("inf")
    for _ in range(repeats):
        protocols = [opened() for _ in range(1000)]
        started = time.process_time()
        for protocol in protocols:
            protocol.data_received(auth_frame)
        for _ in range(3):
            await asyncio.sleep(0)
        best = min(best, (time.process_time() - started) / 1000)
    results["sio connect"] = best

    # A room of N joined sockets, then broadcasts.
    room = [opened() for _ in range(n)]
    for protocol in room:
        protocol.data_received(auth_frame)
    for _ in range(3):
        await asyncio.sleep(0)
    join_frame = client_frame(b'42["join"]')
    for protocol in room:
        protocol.data_received(join_frame)
    for _ in range(3):
        await asyncio.sleep(0)
    members = lobby.adapter.room_size("room")
    if members != n:
        raise RuntimeError(f"{members} of {n} sockets joined the room; the measurement would be wrong")
    results["broadcast"] = (
        best_of(repeats, 1, lambda: lobby.broadcast(lobby.encode("tick", EVENT), to="room")) / n
    )

    tokens = TokenService(SECRET)
    exp = int(time.time()) + 3600
    fresh = iter(
        [
            jwt.encode({"sub": f"u{i}", "name": "Bench", "exp": exp}, SECRET, algorithm="HS256")
            for i in range(repeats * 1000)
        ]
    )

    def check(token: str) -> None:
        coroutine = tokens.check(token)
        try:
            coroutine.send(None)  # a static key never suspends
        except StopIteration:
            return
        raise RuntimeError("TokenService.check suspended with a static key")

    results["token, new"] = best_of(repeats, 1000, lambda: check(next(fresh)))
    again = jwt.encode({"sub": "again", "exp": exp}, SECRET, algorithm="HS256")
    check(again)
    results["token, again"] = best_of(repeats, 1000, lambda: check(again))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10_000, help="sockets in the broadcast's room")
    parser.add_argument("--repeats", type=int, default=7, help="runs of each step; the best counts")
    args = parser.parse_args()
    if not 1 <= args.n <= 100_000:
        parser.error(f"-n must be between 1 and 100,000, not {args.n}")
    # As the server runs (cli.py): start-up objects frozen, young collections rare.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    results = asyncio.run(measure(args.n, args.repeats))
    print(f"transport CPU per operation, in process (best of {args.repeats}; N={args.n:,}):")
    for name, seconds in results.items():
        unit = "per recipient" if name == "broadcast" else "each"
        print(f"  {name:<14} {seconds * 1e6:8.2f} µs {unit}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

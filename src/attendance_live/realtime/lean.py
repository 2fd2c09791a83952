"""A leaner Engine.IO socket: the same protocol without a task per wait.

python-engineio's ``AsyncSocket`` waits for its next outgoing packet with
``asyncio.wait_for(queue.get(), timeout)`` and for each incoming websocket
message with ``wait_for(ensure_future(ws.wait()), timeout)``. On Python 3.11
each of those creates a task (and a timer) per wait: one per message sent and
one per message received, and two tasks held by every idle connection. With
thousands of sockets that is a large share of a broadcast's CPU and of the
memory per connection (docs/performance.md). ``asyncio.timeout`` gives the
same timeouts without the extra tasks.

Behaviour is python-engineio's: the upgrade handshake (PING probe, PONG, NOOP
to end the pending poll, UPGRADE), the size limit on incoming messages, the
timeouts, and closing the socket when the transport ends. ``LeanServer``
switches each new Engine.IO socket to this class before any transport
handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

__all__ = ["LeanServer", "LeanSocket"]


class LeanSocket(AsyncSocket):  # type: ignore[misc]
    # set by python-engineio; declared for the type checker
    connected: bool
    upgraded: bool
    upgrading: bool
    # Our own: the websocket once upgraded, and packets being written by anyone.
    _ws: Any = None
    _in_flight: int = 0

    def can_write_now(self) -> bool:
        """Whether a packet written now directly keeps the order: nothing queued, nothing
        being written (an item stays in an asyncio.Queue until its woken getter runs)."""
        return (
            self._ws is not None
            and self._in_flight == 0
            and self.queue.empty()
            and not self.upgrading
            and not self.closing
            and not self.closed
        )

    async def write_now(self, encoded: str) -> None:
        """Write an encoded Engine.IO packet to the websocket, skipping the queue and
        the writer task (the broadcast path; check ``can_write_now`` first)."""
        self._in_flight += 1
        try:
            # a closed transport: the reader loop sees it and closes the socket
            with contextlib.suppress(Exception):
                await self._ws.send(encoded)
        finally:
            self._in_flight -= 1

    async def poll(self) -> list[Any]:
        """Wait for packets to send (same contract as the library's ``poll``)."""
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                first = await self.queue.get()
        except (TimeoutError, asyncio.CancelledError):
            # as the library does: an expired or cancelled wait ends the transport
            raise exceptions.QueueEmpty() from None
        self.queue.task_done()
        if first is None:
            return []
        packets = [first]
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)  # leave the end marker for the next poll
                break
            packets.append(pkt)
        return packets

    async def _websocket_handler(self, ws: Any) -> None:
        limit = self.server.max_http_buffer_size
        idle = self.server.ping_interval + self.server.ping_timeout

        async def receive() -> Any:
            data = await ws.wait()
            if data and len(data) > limit:
                raise ValueError("packet is too large")
            return data

        if self.connected:
            if not await self._upgrade_from_polling(ws, receive):
                return
        else:
            self.connected = True
            self.upgraded = True

        async def writer() -> None:
            while True:
                try:
                    packets = await self.poll()
                except exceptions.QueueEmpty:
                    break
                if not packets:
                    break  # the end marker: the socket is closing
                self._in_flight += 1
                try:
                    for pkt in packets:
                        await ws.send(pkt.encode())
                except Exception:
                    break
                finally:
                    self._in_flight -= 1
            self._ws = None
            await ws.close()

        self._ws = ws
        writer_task = asyncio.create_task(writer())
        while True:
            try:
                async with asyncio.timeout(idle):
                    data = await receive()
            except BaseException:  # closed, too large, timed out or cancelled: end the transport
                break
            if data is None:
                break  # closed by the client
            try:
                await self.receive(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                break
            except Exception:
                self.server.logger.exception("%s: could not handle a packet", self.sid)
        self.queue.put_nowait(None)  # let the writer finish
        with contextlib.suppress(Exception):
            await writer_task
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _upgrade_from_polling(self, ws: Any, receive: Any) -> bool:
        """The polling-to-websocket upgrade: PING "probe", PONG, NOOP, UPGRADE."""
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            # A client that opens the websocket and never finishes the upgrade is dropped
            # after the ping timeout (the library would wait for ever).
            async with asyncio.timeout(self.server.ping_timeout):
                probe = packet.Packet(encoded_packet=await receive())
            if probe.packet_type != packet.PING or probe.data != "probe":
                self.upgrading = False
                return False
            await ws.send(packet.Packet(packet.PONG, data="probe").encode())
            await self.queue.put(packet.Packet(packet.NOOP))  # ends the pending poll
            async with asyncio.timeout(self.server.ping_timeout):
                upgrade = packet.Packet(encoded_packet=await receive())
        except (OSError, TimeoutError, ValueError):
            self.upgrading = False
            return False
        if upgrade.packet_type != packet.UPGRADE:
            self.upgraded = False
            self.upgrading = False
            return False
        self.upgraded = True
        self.upgrading = False
        return True


class LeanServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, with lean Engine.IO sockets.

    The WSGI/ASGI environ of each connection is still kept by python-socketio
    (``get_environ``), as the library does; only the socket class changes.
    """

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and type(socket) is AsyncSocket:
            socket.__class__ = LeanSocket  # before its transport handler runs
        return await super()._handle_eio_connect(eio_sid, environ)

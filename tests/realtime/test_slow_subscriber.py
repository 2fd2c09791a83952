"""A subscriber that stops reading never holds up the rest of its course (issue 9), end to end.

Through the whole application: sessions started over HTTP, the notifier's broadcasts, the
transport's outgoing buffers. One student's websocket stops reading (a tiny kernel receive
buffer, and nothing read); every other subscriber still gets every event of the course, in
order, each round waiting only for them. The stalled socket is cut off once its outgoing
buffer passes ``OUTGOING_BUFFER_BYTES``, counted in ``attendance_socket_overflows``, and out
of the course's room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from attendance_live.app import Application
from attendance_live.config import Settings
from tests.helpers import Recorder, World

Make = Callable[[str], Recorder]

# Each start or end sends the room its event and a snapshot listing every active session (with
# its 200-character topic, about 350 bytes each). Keeping ACTIVE sessions open and then ending
# the oldest and starting another, CYCLES times, pushes about 5 MB at the stalled client: past
# all its buffers (on loopback the kernel's alone take about 3 MB), while no single snapshot
# comes near the outgoing buffer's limit.
ACTIVE = 90
CYCLES = 60
TOPIC = "t" * 200
BUFFER = 64 * 1024


class StalledClient:
    """A websocket client whose reading the test controls: what it does not read stays in a
    4 KiB kernel buffer and an 8 KiB stream buffer, so the server's writes back up at once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = ClientProtocol(parse_uri(url))
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[StalledClient]:
        parts = urlsplit(url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        try:
            yield cls(reader, writer, url)
        finally:
            writer.close()

    def _flush(self) -> None:
        self.writer.write(b"".join(self.protocol.data_to_send()))

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    async def receive(self) -> str:
        """The next text frame (reading only as much as that takes)."""
        async with asyncio.timeout(10):
            while True:
                for event in self.protocol.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        return bytes(event.data).decode()
                data = await self.reader.read(4096)
                assert data, "the server closed the connection"
                self.protocol.receive_data(data)

    async def closed_by_server(self) -> None:
        """Read (and drop) whatever is left until the server's side is gone."""
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionError):
                while await self.reader.read(65536):
                    pass


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"outgoing_buffer_bytes": BUFFER})


async def test_a_stalled_subscriber_never_holds_up_the_others(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    readers = []
    for user in ("s1", "s2", "teacher"):
        reader = recorders(user)
        await reader.connect(live_url, world.users[user].token)
        await reader.emit("subscribeToCourse", {"course_id": "cs101"})
        assert (await reader.next("activeSessionsData"))["activeSessions"] == []
        readers.append(reader)
    ws_url = live_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with StalledClient.connect(ws_url) as stalled:
        assert (await stalled.receive()).startswith("0{")
        stalled.send("40" + json.dumps({"token": world.users["s3"].token}))
        assert (await stalled.receive()).startswith('40{"sid"')
        stalled.send('42["subscribeToCourse",{"course_id":"cs101"}]')
        assert (await stalled.receive()).startswith('42["activeSessionsData"')
        assert app.realtime.room_size("course:cs101") == 4
        # From here on the stalled client reads nothing.

        started: list[str] = []
        ended: list[str] = []

        async def everyone_hears(event: str, session_id: str) -> None:
            for reader in readers:
                assert (await reader.next(event))["session_id"] == session_id
                snapshot = await reader.next("activeSessionsData")
                assert sorted(s["sessionId"] for s in snapshot["activeSessions"]) == sorted(active)

        active: list[str] = []
        for cycle in range(ACTIVE + CYCLES):
            if cycle >= ACTIVE:
                oldest = active.pop(0)
                assert (await world.end(oldest)).status_code == 200
                ended.append(oldest)
                await everyone_hears("courseSessionEnded", oldest)
            session_id = (await world.start(topic=TOPIC))["id"]
            active.append(session_id)
            started.append(session_id)
            await everyone_hears("courseSessionStarted", session_id)

        for reader in readers:
            for event, expected in (("courseSessionStarted", started), ("courseSessionEnded", ended)):
                assert [data["session_id"] for name, data in reader.events if name == event] == expected
            assert reader.client.connected
        # the stalled client, once
        assert app.metrics.registry.get_sample_value("attendance_socket_overflows_total") == 1
        assert app.realtime.room_size("course:cs101") == 3
        assert len(app.realtime.user_sockets.get("s3", ())) == 0
        await stalled.closed_by_server()

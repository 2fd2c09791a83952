"""The websocket opening handshake on the wire: a plain upgrade is answered by our own
short path (below ASGI), anything unusual by websockets' ``ServerProtocol``; a client sees
the same answers either way, under both websocket drivers."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlsplit

import orjson
import pytest

from attendance_live.transport import SocketServer, TransportSettings
from attendance_live.transport.ws_protocol import plain_upgrade
from tests.transport.conftest import Serve
from tests.transport.raw import GUARD

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_6455_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # the example of RFC 6455, section 1.3


def request_head(host: str, extra: str = "", key: str = KEY, version: str = "13") -> bytes:
    return (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
    ).encode()


async def exchange(ws_url: str, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a raw request head; the response's status, headers (lower-cased names) and the
    first bytes after it (the OPEN packet's frame, on success)."""
    parts = urlsplit(ws_url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        async with asyncio.timeout(GUARD):
            response = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = response.decode("latin-1").split("\r\n")
            headers = {
                name.lower(): value.strip() for name, _, value in (ln.partition(":") for ln in lines if ln)
            }
            status = int(status_line.split(" ")[1])
            after = await reader.read(2 + 125) if status == 101 else b""
        return status, headers, after
    finally:
        writer.close()


def open_packet(frame: bytes) -> dict[str, object]:
    assert frame[0] == 0x81, frame  # FIN + text, unmasked
    length = frame[1]
    assert length < 126
    text = frame[2 : 2 + length].decode()
    assert text.startswith("0{"), text
    opening: dict[str, object] = orjson.loads(text[1:])
    return opening


def quiet_server() -> SocketServer:
    return SocketServer(TransportSettings(ping_interval_ms=60_000, ping_timeout_ms=60_000))


async def test_a_plain_upgrade_is_accepted_with_the_rfc_key_and_the_open_packet(serve: Serve) -> None:
    live = await serve(quiet_server())
    status, headers, after = await exchange(live.ws_url, request_head("127.0.0.1"))
    assert status == 101
    assert headers["upgrade"].lower() == "websocket"
    assert headers["connection"].lower() == "upgrade"
    assert headers["sec-websocket-accept"] == RFC_6455_ACCEPT
    assert "sec-websocket-protocol" not in headers
    assert "sec-websocket-extensions" not in headers
    opening = open_packet(after)
    assert isinstance(opening["sid"], str)
    assert opening["sid"]
    assert opening["upgrades"] == []


async def test_a_browser_offering_deflate_gets_no_extension_while_it_is_off(serve: Serve) -> None:
    live = await serve(quiet_server())
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nOrigin: http://x\r\n"
    status, headers, after = await exchange(live.ws_url, request_head("127.0.0.1", offer))
    assert status == 101
    assert "sec-websocket-extensions" not in headers
    assert open_packet(after)["sid"]


async def test_an_offered_subprotocol_goes_the_long_way_and_is_not_chosen(serve: Serve) -> None:
    live = await serve(quiet_server())
    offer = "Sec-WebSocket-Protocol: chat\r\n"
    status, headers, after = await exchange(live.ws_url, request_head("127.0.0.1", offer))
    assert status == 101
    assert headers["sec-websocket-accept"] == RFC_6455_ACCEPT
    assert "sec-websocket-protocol" not in headers
    assert open_packet(after)["sid"]


@pytest.mark.parametrize(
    ("key", "version"),
    [("not base64!", "13"), (base64.b64encode(b"short").decode(), "13")],
)
async def test_a_bad_key_is_refused_with_400(serve: Serve, key: str, version: str) -> None:
    live = await serve(quiet_server())
    status, headers, _ = await exchange(live.ws_url, request_head("127.0.0.1", key=key, version=version))
    assert status == 400
    assert "sec-websocket-accept" not in headers


def test_plain_upgrade_reads_only_the_plain_case() -> None:
    head = request_head("h").rstrip(b"\r\n")
    parsed = plain_upgrade(head)
    assert parsed is not None
    target, headers, accept = parsed
    assert target == "/socket.io/?EIO=4&transport=websocket"
    assert headers["host"] == "h"
    assert accept == RFC_6455_ACCEPT
    unusual = [
        head.replace(b"GET", b"POST"),
        head.replace(b"HTTP/1.1", b"HTTP/1.0"),
        head.replace(b"Upgrade: websocket", b"Upgrade: h2c"),
        head.replace(b"Connection: Upgrade", b"Connection: keep-alive"),
        head.replace(b"Version: 13", b"Version: 8"),
        head + b"\r\nSec-WebSocket-Protocol: chat",
        head + b"\r\nHost: again",
        head + b"\r\nX-Name: caf\xc3\xa9",
    ]
    assert [plain_upgrade(h) for h in unusual] == [None] * len(unusual)
    # Connection may list more options, in any case.
    assert plain_upgrade(head.replace(b"Connection: Upgrade", b"Connection: keep-alive, UPGRADE")) is not None

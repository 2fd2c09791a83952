"""Request heads are bounded (issue 23): a real ``serve`` process, raw sockets.

Before, a 64 MiB header was read whole and answered 200; four of them took the
server from 163 to 422 MB.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import bearer
from tests.process import ServerProcess, cli_env, run_cli

pytestmark = pytest.mark.slow

UPGRADE = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = cli_env(f"sqlite:///{tmp_path / 'live.db'}", HTTP_MAX_HEADER_BYTES="16384", HTTP_MAX_HEADERS="100")
    seeded = run_cli("demo", "--json", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    process = ServerProcess(env, tmp_path / "server.log")
    await process.start()
    yield process
    await process.stop()


async def _exchange(port: int, data: bytes, *, chunk: int = 65536) -> bytes:
    """Send ``data`` in writes of ``chunk`` bytes while reading, as a browser or curl does;
    return all the server answered until it closed its side."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        try:
            for start in range(0, len(data), chunk):
                writer.write(data[start : start + chunk])
                await writer.drain()
        except ConnectionError:
            pass  # the server closed after its answer

    sending = asyncio.create_task(send())
    try:
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        sending.cancel()
        writer.close()


def _status_and_detail(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, str(json.loads(body)["detail"])


async def _healthy(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200
        courses = await http.get("/api/courses", headers=bearer("demo-teacher", "teacher"))
        assert courses.status_code == 200
        assert [course["id"] for course in courses.json()] == ["demo-course"]


async def test_a_64_kib_header_is_431_and_the_server_stays_healthy(server: ServerProcess) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    for chunk in (65536 + 100, 1024):  # the whole head in one read, and a head arriving slowly
        status, detail = _status_and_detail(await _exchange(server.port, big, chunk=chunk))
        assert status == 431
        assert "HTTP_MAX_HEADER_BYTES" in detail
    # A head that never ends: answered as soon as the limit is passed, nothing more is read.
    endless = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 * 1024 * 1024)
    status, _ = _status_and_detail(await _exchange(server.port, endless))
    assert status == 431
    await _healthy(server)


async def test_too_many_header_fields_is_431(server: ServerProcess) -> None:
    fields = b"".join(b"X-F%d: 1\r\n" % n for n in range(150))
    status, detail = _status_and_detail(
        await _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    )
    assert status == 431
    assert "more than 100 header fields" in detail
    assert "HTTP_MAX_HEADERS" in detail
    await _healthy(server)


async def test_a_long_request_line_is_414(server: ServerProcess) -> None:
    line = b"GET /healthz?" + b"q" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, detail = _status_and_detail(await _exchange(server.port, line))
    assert status == 414
    assert "shorten the URL" in detail
    await _healthy(server)


async def test_the_websocket_upgrade_is_bounded_alike(server: ServerProcess) -> None:
    big = UPGRADE + b"X-Big: " + b"a" * 65536 + b"\r\n\r\n"
    status, _ = _status_and_detail(await _exchange(server.port, big))
    assert status == 431
    many = UPGRADE + b"".join(b"X-F%d: 1\r\n" % n for n in range(150)) + b"\r\n"
    status, _ = _status_and_detail(await _exchange(server.port, many))
    assert status == 431
    # A plain upgrade still works.
    answer = await _exchange_until(server.port, UPGRADE + b"\r\n", b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 101")
    await _healthy(server)


async def test_requests_within_the_limits_are_served_with_their_bodies(server: ServerProcess) -> None:
    # Heads near the limit, a body far larger than it (in the same writes as the head), keep-alive.
    teacher = bearer("demo-teacher", "teacher")
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(3):
            padded = {**teacher, "X-Padding": "p" * 14000, **{f"X-{n}": "1" for n in range(80)}}
            response = await http.get("/api/courses", headers=padded)
            assert response.status_code == 200
        large = await http.post(
            "/api/courses",
            headers=teacher,
            json={"id": "big-course", "code": "BIG", "title": "Big", "padding": "x" * 300_000},
        )
        # read whole and answered by the API (not by the head limit)
        assert large.status_code == 422
        assert large.json()["errors"][0]["loc"] == ["body", "padding"]


async def _exchange_until(port: int, data: bytes, marker: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.readuntil(marker), 30)
    finally:
        writer.close()

"""The HTTP edge: security headers, odd paths, body caps, strict types, one CORS rule for HTTP and socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from attendance_live.api.hardening import http_protocol
from attendance_live.app import Application, create_app
from attendance_live.config import Settings
from tests.helpers import World
from tests.infra import free_port

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def test_the_dashboard_and_the_api_carry_security_headers(
    http: httpx.AsyncClient, world: World
) -> None:
    for path, headers in (("/", {}), ("/courses/cs101", {}), ("/api/courses", world.teacher.headers)):
        response = await http.get(path, headers=headers)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == STRICT_CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
    index = (await http.get("/")).text
    assert "<script" in index
    assert "<script>" not in index  # every script is a file: no inline script for the CSP to allow
    docs = await http.get("/docs")  # served from the package, no inline script: the same policy
    assert docs.headers["content-security-policy"] == STRICT_CSP


async def test_frame_ancestors_is_configurable_for_an_lms(settings: Settings) -> None:
    configured = settings.model_copy(update={"frame_ancestors": "https://lms.uni.example"})
    application = create_app(configured)
    transport = httpx.ASGITransport(app=application.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/healthz")
    assert response.headers["content-security-policy"].endswith("frame-ancestors https://lms.uni.example")
    assert "x-frame-options" not in response.headers


@pytest.mark.parametrize("path", ["/%00", "/api/%00", "/assets/%00x.js", "/a%0Ab", "/" + "a" * 300])
async def test_odd_paths_are_404_not_500(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No such endpoint")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_very_long_path_is_414_not_503(http: httpx.AsyncClient) -> None:
    response = await http.get("/" + "/".join(["a" * 100] * 50))  # 5,050 characters
    assert response.status_code == 414
    assert "longer than 4096 bytes" in response.json()["detail"]
    assert (await http.get("/assets/" + "b" * 5000)).status_code == 414


async def test_bodies_over_the_cap_are_413_before_parsing(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    cap = settings.max_body_bytes
    big = b'{"topic": "' + b"x" * cap + b'"}'
    url = f"/api/courses/{world.course_id}/sessions"
    headers = {**world.teacher.headers, "Content-Type": "application/json"}
    response = await http.post(url, content=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"] == (
        f"The request body is larger than {cap} bytes (MAX_BODY_BYTES); send less"
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(cap // 65536 + 2):
            yield b"x" * 65536

    response = await http.post(url, content=chunks(), headers=headers)
    assert response.status_code == 413
    # Nothing was started by either, and a body under the cap still works, chunked or not.
    listing = await http.get(f"/api/courses/{world.course_id}/active-sessions", headers=world.teacher.headers)
    assert listing.json()["activeSessions"] == []

    async def small() -> AsyncIterator[bytes]:
        yield b'{"topic": '
        yield b'"chunked"}'

    started = await http.post(url, content=small(), headers=headers)
    assert started.status_code == 201, started.text
    assert started.json()["topic"] == "chunked"


@pytest.mark.parametrize(
    "body",
    [
        {"late_after_minutes": "5"},
        {"late_after_minutes": True},
        {"late_after_minutes": 5.5},
        {"max_duration_minutes": "60"},
        {"topic": 7},
    ],
)
async def test_request_bodies_are_strictly_typed(http: httpx.AsyncClient, world: World, body: Any) -> None:
    response = await http.post(
        f"/api/courses/{world.course_id}/sessions", json=body, headers=world.teacher.headers
    )
    assert response.status_code == 422, response.text
    field = next(iter(body))
    assert field in response.json()["detail"]
    listing = await http.get(f"/api/courses/{world.course_id}/active-sessions", headers=world.teacher.headers)
    assert listing.json()["activeSessions"] == []


async def test_enrollment_and_record_bodies_are_strict_too(http: httpx.AsyncClient, world: World) -> None:
    bad = await http.put(
        f"/api/courses/{world.course_id}/enrollments/s9", json={"status": True}, headers=world.teacher.headers
    )
    assert bad.status_code == 422
    ok = await http.put(
        f"/api/courses/{world.course_id}/enrollments/s9",
        json={"status": "approved", "name": "Nine"},
        headers=world.teacher.headers,
    )
    assert ok.status_code == 201


# ---------------------------------------------------------------------- CORS


async def _preflight(client: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await client.options(
        "/api/courses",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


async def _socket_handshake(client: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": origin})


async def test_default_cors_allows_any_origin_without_credentials(http: httpx.AsyncClient) -> None:
    origin = "https://elsewhere.example"
    preflight = await _preflight(http, origin)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    handshake = await _socket_handshake(http, origin)
    assert handshake.status_code == 200
    assert handshake.headers["access-control-allow-origin"] == origin
    for response in (preflight, handshake):  # bearer tokens only: no origin may send credentials
        assert "access-control-allow-credentials" not in response.headers


async def test_configured_origins_bind_http_and_socket_alike(settings: Settings, app: Application) -> None:
    # (``app`` has migrated the database this second application uses)
    configured = settings.model_copy(update={"cors_origins": ["https://dash.uni.example"]})
    application = create_app(configured)
    transport = httpx.ASGITransport(app=application.asgi)
    async with (
        application.http.router.lifespan_context(application.http),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        good, evil = "https://dash.uni.example", "https://evil.example"
        assert (await _preflight(client, good)).headers["access-control-allow-origin"] == good
        assert (await _socket_handshake(client, good)).headers["access-control-allow-origin"] == good
        refused = await _preflight(client, evil)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        handshake = await _socket_handshake(client, evil)
        assert handshake.status_code == 400
        assert "access-control-allow-origin" not in handshake.headers
        await application.realtime.close()


async def test_connections_whose_headers_never_complete_are_closed(app: Application) -> None:
    config = uvicorn.Config(
        app.asgi,
        host="127.0.0.1",
        port=free_port(),
        lifespan="off",
        log_config=None,
        http=http_protocol(header_timeout=1, max_header_bytes=16384, max_headers=100),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)

        async def closed_after(sent: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", config.port)
            writer.write(sent)
            # Bounded: without the header timeout uvicorn keeps such a connection for ever.
            received = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return received

        assert await closed_after(b"") == b""  # connected, never sent a byte
        assert await closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\n") == b""  # slowloris
        answered = await closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answered.startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        await task

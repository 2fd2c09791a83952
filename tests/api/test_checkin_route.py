"""The lean check-in handler (api.checkin_route): what it answers itself, what it hands to the router.

The answers themselves are tested through the whole app (tests/api/test_check_in_integrity.py,
test_lifecycle.py, test_authorization.py, test_validation.py), where every check-in passes here first.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from attendance_live.api.checkin_route import CheckInRoute
from attendance_live.app import Application
from tests.helpers import World


class Router:
    """Stands for the FastAPI app behind the handler: records what it was handed."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.handed.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"router"})


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def lean(app: Application, router: Router) -> httpx.AsyncClient:
    handler = CheckInRoute(router, app.context)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=handler), base_url="http://test")


async def test_a_plain_check_in_is_answered_without_the_router(
    world: World, lean: httpx.AsyncClient, router: Router
) -> None:
    session = await world.start(check_in_mode="code")
    code = (await world.check_in_code(session["id"]))["code"]
    url = f"/api/sessions/{session['id']}/check-in"
    ok = await lean.post(url, json={"code": code}, headers=world.users["s1"].headers)
    assert ok.status_code == 200
    assert ok.json()["status"] == "present"
    refused = await lean.post(url, json={"code": "AAAAAA"}, headers=world.users["s2"].headers)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "code_invalid"
    unknown = await lean.post("/api/sessions/nope/check-in", json={}, headers=world.users["s1"].headers)
    assert unknown.status_code == 404
    assert router.handed == []


@pytest.mark.parametrize(
    ("path", "content", "headers", "why"),
    [
        ("/api/sessions/{sid}/check-in", b"{not json", {"content-type": "application/json"}, "bad JSON"),
        (
            "/api/sessions/{sid}/check-in",
            b'{"pin": 1}',
            {"content-type": "application/json"},
            "unknown field",
        ),
        ("/api/sessions/{sid}/check-in", b'{"code": "X"}', {"content-type": "text/plain"}, "not JSON"),
        ("/api/sessions/{sid}/check-in", b"", {"authorization": "Bearer nonsense"}, "bad token"),
        ("/api/sessions/{sid}/check-in", b"", {"authorization": ""}, "no token"),
        ("/api/sessions/-bad-/check-in", b"", {}, "bad id"),
        ("/api/sessions/{sid}/check-in", b'{"code": "' + b"A" * 5000 + b'"}', {}, "large body"),
        ("/api/sessions/{sid}/end", b"", {}, "another path"),
    ],
)
async def test_everything_else_goes_to_the_router_with_its_body_intact(
    world: World,
    lean: httpx.AsyncClient,
    router: Router,
    path: str,
    content: bytes,
    headers: dict[str, str],
    why: str,
) -> None:
    session = await world.start()
    url = path.format(sid=session["id"])
    sent: dict[str, Any] = {**world.users["s1"].headers, **headers}
    response = await lean.post(url, content=content, headers=sent)
    assert response.text == "router", why
    assert router.handed == [(url, content)], why


async def test_the_app_answers_check_ins_with_its_usual_headers_and_metrics(
    app: Application, world: World, http: httpx.AsyncClient
) -> None:
    session = await world.start()
    response = await http.post(
        f"/api/sessions/{session['id']}/check-in",
        headers={**world.users["s1"].headers, "Origin": "http://elsewhere.example", "X-Request-ID": "abc-1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-1"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"] == "application/json"
    metrics = (await http.get("/metrics")).text
    assert 'method="POST",route="/api/sessions/{session_id}/check-in",status_class="2xx"' in metrics


async def test_a_client_that_goes_away_mid_body_is_handed_on_with_its_disconnect(
    app: Application, router: Router
) -> None:
    handler = CheckInRoute(router, app.context)
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"co', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/sessions/abc/check-in",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    await handler(scope, receive, send)
    assert router.handed == [("/api/sessions/abc/check-in", b'{"co')]

"""``POST /api/sessions/{session_id}/check-in`` as a plain ASGI handler, in front of the router.

A lecture hall checks in all at once, and FastAPI's per-request machinery
(routing, dependency solving, body and response models) was about half of a
check-in's CPU (docs/performance.md). This handler answers exactly that
method and path with the same steps the route takes, from the same parts:
``deps.authenticate``, ``schemas.CheckInBody``, ``client_address``, the
service, and ``errors.error_response`` for every error. It sits inside the
middleware stack (request id, metrics, CORS and the rest wrap it as they wrap
the routes), and it hands everything that is not a plain valid request to the
router, which then gives the documented answer: a malformed id or body
(422/400), a missing or bad token (401). The FastAPI route stays: it documents
the endpoint in OpenAPI and serves what is handed on.
"""

from __future__ import annotations

import re

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attendance_live.api import sessions
from attendance_live.api.client_address import address_of
from attendance_live.api.deps import authenticate, bearer_token
from attendance_live.api.errors import Unauthorized, error_response
from attendance_live.api.schemas import CheckInBody
from attendance_live.context import AppContext
from attendance_live.vocabulary import ID_RE

__all__ = ["CHECK_IN_PATH", "CHECK_IN_TEMPLATE", "MAX_BODY_BYTES", "CheckInRoute"]

CHECK_IN_TEMPLATE = "/api/sessions/{session_id}/check-in"
CHECK_IN_PATH = re.compile(r"^/api/sessions/([^/]+)/check-in$")
# A check-in body is a few dozen bytes; anything larger goes to the router.
MAX_BODY_BYTES = 4096


class CheckInRoute:
    """The check-in's lean handler; see the module docstring."""

    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context
        # What the metrics name this endpoint by (Observe reads scope["route"].path),
        # the same template as the router's route.
        self.route = Route(CHECK_IN_TEMPLATE, endpoint=sessions.check_in, methods=["POST"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            CHECK_IN_PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        body, complete, last = await _read_body(receive)
        replay = _replaying(body, complete, last, receive)
        identity_and_input = await self._plain_request(scope, match.group(1), body, complete)
        if identity_and_input is None:
            await self.app(scope, replay, send)
            return
        session_id, token, check_in = identity_and_input
        scope["route"] = self.route
        try:
            caller = await authenticate(self.context, token)
        except Unauthorized:
            await self.app(scope, replay, send)  # the router answers 401 (with WWW-Authenticate)
            return
        try:
            view = await self.context.service.check_in(
                caller,
                session_id,
                code=check_in.code,
                address=address_of(scope, self.context.settings.trusted_proxies),
                device_id=check_in.device_id,
            )
            response: Response = Response(
                orjson.dumps(view.model_dump(mode="json")), media_type="application/json"
            )
        except Exception as exc:
            response = await error_response(Request(scope, replay), exc)
        await response(scope, replay, send)

    async def _plain_request(
        self, scope: Scope, session_id: str, body: bytes, complete: bool
    ) -> tuple[str, str | None, CheckInBody] | None:
        """(session id, token, body) of a well-formed request; None hands it to the router."""
        if not complete or not ID_RE.match(session_id):
            return None
        content_type = authorization = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        if not body.strip():
            check_in = CheckInBody()
        elif content_type is None or not content_type.startswith(b"application/json"):
            return None
        else:
            try:
                check_in = CheckInBody.model_validate(orjson.loads(body))
            except (orjson.JSONDecodeError, ValidationError):
                return None
        return session_id, bearer_token(authorization), check_in


async def _read_body(receive: Receive) -> tuple[bytes, bool, Message | None]:
    """(the body, whether all of it was read, a disconnect that came instead of the rest)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False, message  # the client went away
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True, None
        if size > MAX_BODY_BYTES:  # not a check-in body: the router reads the rest
            return b"".join(chunks), False, None


def _replaying(body: bytes, complete: bool, last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives back what was read, then the rest from the client."""
    queued: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}]
    if last is not None:
        queued.append(last)

    async def replay() -> Message:
        if queued:
            return queued.pop(0)
        return await receive()

    return replay

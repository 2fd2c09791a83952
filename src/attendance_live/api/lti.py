"""``/lti/*``: the tool's JWKS, the login initiation, the launch; ``/api/courses/{id}/lti``.

A launch lands in the dashboard signed in with a session token of the server's own: the
launch answers a small page that carries the token in its body (never in a URL, so never
in an access log or a Referer) and ``/lti/landing.js`` stores it in this tab's
sessionStorage, where the dashboard keeps its token, then opens the course.

Every refusal is an HTML page with a reference id, and one log line with that id and the
reason (never a traceback, never the token).

Framing: ``/lti/*`` pages may be framed by every registered platform; after a launch a
``lti_platform`` cookie makes the dashboard's pages frameable by that platform only
(:class:`LtiFraming`, its ``--frame-ancestors`` or the origins of its URLs).
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import time
from collections.abc import Sequence
from http.cookies import SimpleCookie
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attendance_live.api.deps import Caller, CourseId
from attendance_live.api.hardening import dashboard_policy
from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.lti.launch import LOGIN_SECONDS, LaunchError
from attendance_live.lti.platform import PlatformError
from attendance_live.lti.registry import list_platforms, tool_config
from attendance_live.lti.service import LtiTool
from attendance_live.service.errors import Conflict, Forbidden

__all__ = [
    "LANDING_JS",
    "PLATFORM_COOKIE",
    "STATE_COOKIE",
    "LtiFraming",
    "Tool",
    "refused",
    "router",
]

log = logging.getLogger(__name__)

STATE_COOKIE: Final = "lti_state"
PLATFORM_COOKIE: Final = "lti_platform"
LANDING_JS: Final = """// Keeps an LTI launch's session token where the dashboard does, then opens the course.
// Where the browser blocks storage in a third-party iframe (Safari, Firefox's strict mode,
// Chrome's incognito), the token goes in the fragment instead: never sent to a server.
(function () {
  var landing = document.getElementById('lti-landing');
  if (!landing) return;
  var token = landing.getAttribute('data-token');
  var target = landing.getAttribute('data-target');
  try {
    window.sessionStorage.setItem('attendance-live.token', token);
  } catch (e) {
    target += '#lti_token=' + token;
  }
  window.location.replace(target);
})();
"""

router = APIRouter(tags=["lti"])


def _tool(request: Request) -> LtiTool:
    tool: LtiTool = request.app.state.lti
    return tool


Tool = Annotated[LtiTool, Depends(_tool)]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def refused(error: LaunchError, what: str) -> HTMLResponse:
    reference = secrets.token_hex(4)
    log.warning("LTI %s refused (ref %s): %s", what, reference, error.reason)
    return _page(
        "attendance-live: the LMS launch did not work",
        "<h1>The LMS launch did not work</h1>"
        f'<p id="lti-error">{html.escape(error.reason)}</p>'
        f'<p>Reference: <code id="lti-reference">{reference}</code> (give it to your administrator).</p>',
        error.status,
    )


@router.get("/lti/jwks.json", include_in_schema=True, summary="The tool's public keys (RS256)")
async def lti_jwks(tool: Tool) -> JSONResponse:
    key = await tool.tool_key()
    return JSONResponse(key.jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.get("/lti/config", summary="The tool's configuration for an LMS administrator")
async def lti_config(tool: Tool) -> dict[str, Any]:
    return tool_config(tool.public_url)


def _cookie(response: Response, name: str, value: str, *, max_age: int, path: str) -> None:
    """A cookie a third-party iframe keeps: ``SameSite=None; Secure`` and ``Partitioned`` (CHIPS:
    kept per top-level site, so browsers that block third-party cookies — Chrome's incognito
    and its blocking setting, Firefox's Total Cookie Protection — still send it back inside
    the same LMS page). Written by hand: ``http.cookies`` knows ``Partitioned`` from Python 3.14."""
    response.headers.append(
        "set-cookie",
        f"{name}={value}; Max-Age={max_age}; Path={path}; Secure; HttpOnly; SameSite=None; Partitioned",
    )


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (what platforms post), first value of each
    field; parsed here rather than with python-multipart, which nothing else needs."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        return {}
    return {name: values[0] for name, values in parse_qs(text, max_num_fields=50).items()}


async def _login(request: Request, tool: LtiTool) -> Response:
    params: dict[str, str] = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        params.update(await _form(request))
    try:
        url, state, _ = await tool.launcher.login(params)
    except LaunchError as exc:
        return refused(exc, "login")
    response = RedirectResponse(url, status_code=302)
    _cookie(response, STATE_COOKIE, state, max_age=LOGIN_SECONDS, path="/lti/")
    return response


@router.get("/lti/login", summary="OIDC third-party-initiated login (from the platform)")
async def lti_login_get(request: Request, tool: Tool) -> Response:
    return await _login(request, tool)


@router.post("/lti/login", summary="OIDC third-party-initiated login (from the platform, form post)")
async def lti_login_post(request: Request, tool: Tool) -> Response:
    return await _login(request, tool)


@router.post("/lti/launch", summary="The launch: the platform's id_token (form post)")
async def lti_launch(request: Request, tool: Tool) -> Response:
    form = await _form(request)
    id_token = form.get("id_token")
    state = form.get("state")
    try:
        if form.get("error"):
            raise LaunchError(
                f"The LMS refused the sign-in ({str(form.get('error'))[:60]}: "
                f"{str(form.get('error_description') or '')[:200]}); try again from the course page"
            )
        launch = await tool.launcher.launch(
            id_token if isinstance(id_token, str) else "",
            state if isinstance(state, str) else "",
            request.cookies.get(STATE_COOKIE),
        )
        landed = await tool.land(launch)
    except LaunchError as exc:
        return refused(exc, "launch")
    except Exception as exc:  # a page with a reference, never a traceback
        log.debug("LTI launch failed", exc_info=True)
        problem = LaunchError(
            f"The launch could not be completed ({type(exc).__name__}); try again in a moment, and give "
            "the reference below to your administrator if it happens again",
            status=503,
        )
        return refused(problem, f"launch ({type(exc).__name__}: {str(exc)[:200]})")
    target = f"/courses/{landed.course_id}"
    response = _page(
        "attendance-live: signing in",
        f'<p id="lti-landing" data-token="{html.escape(landed.token)}" data-target="{html.escape(target)}">'
        'Signing you in to attendance-live…</p><script src="/lti/landing.js"></script>',
    )
    _cookie(response, STATE_COOKIE, "", max_age=0, path="/lti/")
    _cookie(response, PLATFORM_COOKIE, str(landed.platform.id), max_age=tool.token_seconds, path="/")
    log.info("LTI launch from %s: %s on course %s", landed.platform.issuer, landed.role, landed.course_id)
    return response


@router.get("/lti/landing.js", include_in_schema=False)
async def lti_landing_js() -> Response:
    return Response(LANDING_JS, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/api/courses/{course_id}/lti", summary="The course's LMS link and its last roster sync")
async def course_lti(course_id: CourseId, user: Caller, tool: Tool) -> dict[str, Any]:
    await _require_manager(tool, user, course_id)
    found = await tool.context_of(course_id)
    if found is None:  # not from an LMS: said plainly (the dashboard asks for every course)
        return {
            "linked": False,
            "issuer": None,
            "context_id": None,
            "roster_sync": False,
            "grades": False,
            "last_sync": None,
            "grade_posts": None,
        }
    context, platform = found
    return {
        "linked": True,
        "issuer": platform.issuer,
        "context_id": context.context_id,
        "roster_sync": bool(context.memberships_url),
        "grades": bool(context.lineitems_url),
        "last_sync": json.loads(context.last_sync_summary) if context.last_sync_summary else None,
        "grade_posts": await tool.grades.state(course_id) if tool.grades is not None else None,
    }


@router.post("/api/courses/{course_id}/lti/sync", summary="Sync the roster from the LMS now (NRPS)")
async def course_lti_sync(course_id: CourseId, user: Caller, tool: Tool) -> dict[str, Any]:
    await _require_manager(tool, user, course_id)
    if await tool.context_of(course_id) is None:
        raise Conflict(
            f"Course {course_id!r} was not created by a launch from an LMS, so it has no LMS roster to read"
        )
    try:
        summary = await tool.sync_roster(course_id)
    except PlatformError as exc:
        raise HTTPException(
            502, f"The roster could not be read from the LMS: {exc}; try again later"
        ) from None
    return {name: getattr(summary, name) for name in type(summary).__slots__}


async def _require_manager(tool: LtiTool, user: Identity, course_id: str) -> None:
    await tool.service.get_course(user, course_id)  # a stranger learns nothing: 404, as everywhere
    if not await tool.service.manages_course(user, course_id):
        raise Forbidden(f"Only the teacher of course {course_id!r} or an admin can do this")


class LtiFraming:
    """Lets registered platforms frame the tool (see the module docstring)."""

    def __init__(self, app: ASGIApp, database: Database, *, connect_origins: Sequence[str] = ()) -> None:
        self.app = app
        self.database = database
        self.connect_origins = list(connect_origins)
        self._framing: dict[str, str] = {}
        self._loaded_at = 0.0

    async def _policies(self) -> dict[str, str]:
        if time.monotonic() - self._loaded_at > 5:
            platforms = await list_platforms(self.database)
            self._framing = {str(p.id): p.framing for p in platforms}
            self._framing["*"] = (
                " ".join(sorted({o for p in platforms for o in p.framing.split()})) or "'none'"
            )
            self._loaded_at = time.monotonic()
        return self._framing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        platform: str | None = None
        if path.startswith("/lti/"):
            platform = "*"
        elif not path.startswith(("/api/", "/socket.io")):
            cookie = next((v for k, v in scope["headers"] if k == b"cookie"), None)
            if cookie is not None and PLATFORM_COOKIE.encode() in cookie:
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(cookie.decode("latin-1"))
                except Exception:
                    jar = SimpleCookie()
                morsel = jar.get(PLATFORM_COOKIE)
                platform = morsel.value if morsel is not None else None
        if platform is None:
            await self.app(scope, receive, send)
            return
        ancestors = (await self._policies()).get(platform)
        if ancestors is None:
            await self.app(scope, receive, send)
            return
        policy = dashboard_policy(ancestors, self.connect_origins).encode()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"
                ]
                # Hardening adds no X-Frame-Options to a response with its own policy.
                headers.append((b"content-security-policy", policy))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)

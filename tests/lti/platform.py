"""A local LTI 1.3 platform: a real HTTP service on loopback, as an LMS would be.

It has its own RSA key and JWKS, an authorization endpoint that answers a login initiation
with the auto-submitting form that POSTs an id_token to the tool, a token endpoint that
verifies the tool's client assertion against the tool's JWKS, NRPS memberships served in
pages of ``page_size`` (``Link: rel="next"``), and AGS line items and scores. ``down()``
makes every endpoint answer 503.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from tests.auth.provider import SigningKey

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR = LIS + "Instructor"
LEARNER = LIS + "Learner"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]


@dataclass
class Person:
    sub: str
    name: str
    email: str | None
    roles: list[str]
    status: str = "Active"


@dataclass
class Platform:
    url: str
    key: SigningKey
    client_id: str = "tool-client-1"
    deployment_id: str = "deployment-1"
    tool_jwks_url: str = ""
    redirect_uri: str = ""
    context: dict[str, str] = field(
        default_factory=lambda: {"id": "ctx-1", "title": "Biology 101", "label": "BIO101"}
    )
    people: dict[str, Person] = field(default_factory=dict)
    page_size: int = 2
    is_down: bool = False
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> scope
    token_requests: int = 0
    assertion_errors: list[str] = field(default_factory=list)
    lineitems: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    membership_pages_served: int = 0
    # Overrides of the next id_token's claims (tests of refusals).
    overrides: dict[str, Any] = field(default_factory=dict)
    last_nonce: str = ""

    @property
    def issuer(self) -> str:
        return self.url

    def down(self, value: bool = True) -> None:
        self.is_down = value

    def add(
        self, sub: str, name: str, roles: list[str], *, email: str | None = None, status: str = "Active"
    ) -> Person:
        person = Person(sub, name, email, roles, status)
        self.people[sub] = person
        return person

    def login_params(self, sub: str) -> dict[str, str]:
        return {
            "iss": self.issuer,
            "login_hint": sub,
            "target_link_uri": self.redirect_uri,
            "lti_message_hint": "resource-1",
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }

    def claims(self, sub: str, nonce: str) -> dict[str, Any]:
        person = self.people[sub]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "sub": person.sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": person.name,
            "email": person.email,
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "roles": person.roles,
            CLAIM + "target_link_uri": self.redirect_uri,
            CLAIM + "resource_link": {"id": "resource-1", "title": "Attendance"},
            CLAIM + "context": dict(self.context),
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/nrps/{self.context['id']}",
                "service_versions": ["2.0"],
            },
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": AGS_SCOPES,
                "lineitems": f"{self.url}/lineitems/{self.context['id']}",
            },
        }
        claims.update(self.overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def id_token(self, sub: str, nonce: str, *, key: SigningKey | None = None) -> str:
        return (key or self.key).sign(self.claims(sub, nonce))

    def members(self) -> list[dict[str, Any]]:
        return [
            {"user_id": p.sub, "name": p.name, "email": p.email, "roles": p.roles, "status": p.status}
            for p in self.people.values()
        ]

    # ------------------------------------------------------------ endpoints

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        problems = [
            name
            for name, expected in (
                ("scope", "openid"),
                ("response_type", "id_token"),
                ("response_mode", "form_post"),
                ("prompt", "none"),
                ("client_id", self.client_id),
                ("redirect_uri", self.redirect_uri),
            )
            if query.get(name) != expected
        ]
        if problems or query.get("login_hint") not in self.people or not query.get("nonce"):
            return 400, f"bad authorization request: {problems or 'login_hint/nonce'}"
        self.last_nonce = query["nonce"]
        token = self.id_token(query["login_hint"], query["nonce"])
        return 200, (
            '<!doctype html><html><body><form id="launch" method="post" action="'
            f'{html.escape(self.redirect_uri)}"><input type="hidden" name="id_token" value="{token}">'
            f'<input type="hidden" name="state" value="{html.escape(query.get("state", ""))}">'
            "</form><script>document.getElementById('launch').submit()</script></body></html>"
        )

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        assertion = form.get("client_assertion", "")
        try:
            keys = jwt.PyJWKClient(self.tool_jwks_url, cache_keys=False)
            key = keys.get_signing_key_from_jwt(assertion)
            claims = jwt.decode(
                assertion,
                key.key,
                algorithms=["RS256"],
                audience=f"{self.url}/token",
                options={"require": ["jti", "exp", "iat"]},
            )
            if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
                raise jwt.InvalidTokenError("iss/sub is not the client id")
            if form.get("grant_type") != "client_credentials":
                raise jwt.InvalidTokenError("grant_type")
        except (jwt.PyJWTError, KeyError) as exc:
            self.assertion_errors.append(f"{type(exc).__name__}: {exc}")
            return 401, {"error": "invalid_client"}
        self.token_requests += 1
        token = secrets.token_urlsafe(16)
        self.access_tokens[token] = form.get("scope", "")
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": form.get("scope", ""),
        }

    def authorized(self, header: str | None, scope: str) -> bool:
        token = (header or "").removeprefix("Bearer ")
        return scope in self.access_tokens.get(token, "").split()


@contextmanager
def serve_platform(port: int = 0) -> Iterator[Platform]:
    """A platform on a free loopback port (or ``port``), stopped on exit."""
    holder: dict[str, Platform] = {}

    class Handler(BaseHTTPRequestHandler):
        def _send(
            self,
            status: int,
            body: Any,
            content_type: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            platform = holder["p"]
            parts = urlsplit(self.path)
            if platform.is_down:
                self._send(503, {"error": "down for maintenance"})
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/jwks":
                self._send(200, {"keys": [platform.key.jwk()]})
            elif parts.path == "/auth":
                status, page = platform.authorize(query)
                self._send(status, page, "text/html; charset=utf-8")
            elif parts.path.startswith("/nrps/"):
                if not platform.authorized(self.headers.get("Authorization"), NRPS_SCOPE):
                    self._send(401, {"error": "no token with the NRPS scope"})
                    return
                platform.membership_pages_served += 1
                members = platform.members()
                number = int(query.get("page", "1"))
                size = platform.page_size
                chunk = members[(number - 1) * size : number * size]
                headers = {}
                if number * size < len(members):
                    headers["Link"] = f'<{platform.url}{parts.path}?page={number + 1}>; rel="next"'
                self._send(
                    200,
                    {"id": platform.url + parts.path, "context": platform.context, "members": chunk},
                    "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
                    headers,
                )
            elif parts.path.startswith("/lineitems/"):
                if not platform.authorized(self.headers.get("Authorization"), AGS_SCOPES[0]):
                    self._send(401, {"error": "no token with the line item scope"})
                    return
                self._send(200, platform.lineitems, "application/vnd.ims.lis.v2.lineitemcontainer+json")
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            platform = holder["p"]
            parts = urlsplit(self.path)
            body = self._body()
            if platform.is_down:
                self._send(503, {"error": "down for maintenance"})
                return
            if parts.path == "/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                status, answer = platform.issue_token(form)
                self._send(status, answer)
            elif re.fullmatch(r"/lineitems/[^/]+", parts.path):
                if not platform.authorized(self.headers.get("Authorization"), AGS_SCOPES[0]):
                    self._send(401, {"error": "no token with the line item scope"})
                    return
                item = json.loads(body)
                item["id"] = f"{platform.url}{parts.path}/{len(platform.lineitems) + 1}"
                platform.lineitems.append(item)
                self._send(201, item, "application/vnd.ims.lis.v2.lineitem+json")
            elif re.fullmatch(r"/lineitems/[^/]+/\d+/scores", parts.path):
                if not platform.authorized(self.headers.get("Authorization"), AGS_SCOPES[2]):
                    self._send(401, {"error": "no token with the score scope"})
                    return
                score = json.loads(body)
                score["lineitem"] = platform.url + parts.path.removesuffix("/scores")
                platform.scores.append(score)
                self._send(200, {})
            else:
                self._send(404, {"error": "not found"})

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    holder["p"] = Platform(url=url, key=SigningKey.new("RS256", "platform-key-1"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["p"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def form_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the platform's auto-submitting form."""
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


__all__ = ["INSTRUCTOR", "LEARNER", "Platform", "form_fields", "query_of", "serve_platform", "urlencode"]

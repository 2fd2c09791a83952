"""Calls to a platform's services: access tokens (client credentials with a signed JWT
assertion, ``private_key_jwt``, cached until shortly before they expire), NRPS pages and AGS.

aiohttp is the HTTP client (already the project's); every call has a timeout, and a failure
is a :class:`PlatformError` whose message names the URL and the status, never a token.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
import jwt

from attendance_live.lti.registry import LTI_ALGORITHM, PlatformInfo, ToolKey

__all__ = [
    "LINEITEMS_MEDIA",
    "LINEITEM_MEDIA",
    "MAX_PAGES",
    "NRPS_MEDIA",
    "SCORE_MEDIA",
    "PlatformClient",
    "PlatformError",
]

MAX_PAGES: Final = 100
NRPS_MEDIA: Final = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINEITEM_MEDIA: Final = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_MEDIA: Final = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_MEDIA: Final = "application/vnd.ims.lis.v1.score+json"
_NEXT: Final = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class PlatformError(Exception):
    """A platform's service refused or did not answer; the message says which and why."""


class PlatformClient:
    def __init__(
        self,
        key: Callable[[], Awaitable[ToolKey]],
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[int, str], tuple[str, float]] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._clock = clock
        self.token_requests = 0  # for tests: how many tokens were fetched

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def token(self, platform: PlatformInfo, scopes: tuple[str, ...]) -> str:
        """An access token for ``scopes``, from the cache until 30 s before it expires."""
        cache_key = (platform.id, " ".join(sorted(scopes)))
        lock = self._locks.setdefault(cache_key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(cache_key)
            if cached is not None and cached[1] > self._clock() + 30:
                return cached[0]
            key = await self._key()
            now = int(self._clock())
            assertion = jwt.encode(
                {
                    "iss": platform.client_id,
                    "sub": platform.client_id,
                    "aud": platform.token_url,
                    "iat": now,
                    "exp": now + 300,
                    "jti": secrets.token_urlsafe(16),
                },
                key.private,
                algorithm=LTI_ALGORITHM,
                headers={"kid": key.kid},
            )
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
                "scope": " ".join(scopes),
            }
            self.token_requests += 1
            body = await self._call("POST", platform.token_url, data=form, what="the token endpoint")
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str):
                raise PlatformError(
                    f"the token endpoint {platform.token_url} answered without an access_token"
                )
            expires_in = body.get("expires_in", 3600)
            lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
            self._tokens[cache_key] = (token, self._clock() + lifetime)
            return token

    async def _call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        token: str | None = None,
        accept: str = "application/json",
        data: dict[str, str] | None = None,
        json_body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        body, _ = await self._call_with_headers(
            method,
            url,
            what=what,
            token=token,
            accept=accept,
            data=data,
            json_body=json_body,
            content_type=content_type,
        )
        return body

    async def _call_with_headers(
        self,
        method: str,
        url: str,
        *,
        what: str,
        token: str | None = None,
        accept: str = "application/json",
        data: dict[str, str] | None = None,
        json_body: Any = None,
        content_type: str | None = None,
    ) -> tuple[Any, str]:
        headers = {"Accept": accept}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if data is not None:
            kwargs["data"] = data
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body)
            headers["Content-Type"] = content_type or "application/json"
        try:
            async with self._client().request(method, url, **kwargs) as response:
                text = await response.text()
                if response.status >= 300:
                    raise PlatformError(f"{what} {url} answered {response.status}: {text[:200]}")
                link = response.headers.get("Link", "")
                if not text.strip():
                    return None, link
                try:
                    return await response.json(content_type=None), link
                except ValueError:
                    raise PlatformError(f"{what} {url} answered something that is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(
                f"{what} {url} cannot be reached ({type(exc).__name__}: {str(exc)[:120]})"
            ) from None

    async def members(self, platform: PlatformInfo, url: str) -> list[dict[str, Any]]:
        """Every member of the context, following ``Link: rel="next"`` page after page."""
        token = await self.token(
            platform, ("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",)
        )
        members: list[dict[str, Any]] = []
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                return members
            body, link = await self._call_with_headers(
                "GET", next_url, what="the memberships service", token=token, accept=NRPS_MEDIA
            )
            page = body.get("members") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise PlatformError(f"the memberships service {next_url} answered without a members list")
            members.extend(m for m in page if isinstance(m, dict))
            found = _NEXT.search(link)
            next_url = found.group(1) if found else None
        raise PlatformError(f"the memberships service {url} has more than {MAX_PAGES} pages; stopped there")

    async def ensure_lineitem(
        self, platform: PlatformInfo, lineitems_url: str, scopes: tuple[str, ...], *, resource_id: str
    ) -> str:
        """The "Attendance" line item's URL: found by its resourceId/tag, created when missing."""
        token = await self.token(platform, scopes)
        found = await self._call(
            "GET", lineitems_url, what="the line items service", token=token, accept=LINEITEMS_MEDIA
        )
        for item in found if isinstance(found, list) else []:
            if (
                isinstance(item, dict)
                and item.get("resourceId") == resource_id
                and isinstance(item.get("id"), str)
            ):
                return str(item["id"])
        created = await self._call(
            "POST",
            lineitems_url,
            what="the line items service",
            token=token,
            accept=LINEITEM_MEDIA,
            json_body={
                "scoreMaximum": 100,
                "label": "Attendance",
                "resourceId": resource_id,
                "tag": "attendance",
            },
            content_type=LINEITEM_MEDIA,
        )
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise PlatformError(f"the line items service {lineitems_url} created a line item without an id")
        return str(created["id"])

    async def post_score(
        self, platform: PlatformInfo, lineitem_url: str, scopes: tuple[str, ...], score: dict[str, Any]
    ) -> None:
        token = await self.token(platform, scopes)
        base, _, query = lineitem_url.partition("?")
        url = f"{base.rstrip('/')}/scores" + (f"?{query}" if query else "")
        await self._call(
            "POST", url, what="the scores service", token=token, json_body=score, content_type=SCORE_MEDIA
        )

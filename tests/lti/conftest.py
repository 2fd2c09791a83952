"""Fixtures: the tool served on a real port, a local LTI platform registered with it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.lti.registry import register_platform
from tests.lti.platform import Platform, form_fields, serve_platform


@pytest.fixture
def platform() -> Iterator[Platform]:
    with serve_platform() as running:
        yield running


@pytest.fixture
async def tool(app: Application, live_url: str, platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the tool, the platform registered with it (one deployment)."""
    platform.tool_jwks_url = f"{live_url}/lti/jwks.json"
    platform.redirect_uri = f"{app.http.state.lti.public_url}/lti/launch"
    await register_platform(
        app.context.database,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=[platform.deployment_id],
        auth_url=f"{platform.url}/auth",
        token_url=f"{platform.url}/token",
        jwks_url=f"{platform.url}/jwks",
    )
    async with httpx.AsyncClient(base_url=live_url) as client:
        yield client


async def login(tool: httpx.AsyncClient, platform: Platform, sub: str) -> tuple[dict[str, str], str]:
    """The login initiation, then the platform's authorization: the form it posts, and the state cookie."""
    started = await tool.get("/lti/login", params=platform.login_params(sub))
    assert started.status_code == 302, started.text
    # http.cookies reads "Partitioned" from Python 3.14 on: the value by hand.
    cookie = re.match(r"lti_state=([\w-]+);", started.headers["set-cookie"])
    assert cookie is not None, started.headers["set-cookie"]
    async with httpx.AsyncClient() as browser:
        page = await browser.get(started.headers["location"])
    assert page.status_code == 200, page.text
    return form_fields(page.text), cookie.group(1)


async def launch(tool: httpx.AsyncClient, platform: Platform, sub: str) -> httpx.Response:
    fields, state = await login(tool, platform, sub)
    return await tool.post("/lti/launch", data=fields, headers={"Cookie": f"lti_state={state}"})

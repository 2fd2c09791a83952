"""The webhook sender looks after a commit only where webhooks are set up (issue 22, item 4).

Without an endpoint, every commit used to wake the sender for three queries that found
nothing. The periodic pass is pushed out of the test's reach (``WEBHOOK_POLL_SECONDS`` 300),
so every pass counted here was woken.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest

from attendance_live.app import Application
from attendance_live.config import Settings
from tests.helpers import World
from tests.webhook_receiver import Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allowed_networks": (ipaddress.ip_network("127.0.0.0/8"),),
            "webhook_poll_seconds": 300.0,
        }
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_commits_wake_the_sender_only_once_an_endpoint_exists(
    app: Application, world: World, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    loop, webhooks = app.term.webhook_loop, app.term.webhooks
    await loop.settled()
    assert webhooks.in_use is False  # nothing registered: the pass said so
    before = loop.passes
    session = await world.start()
    assert (await world.end(session["id"])).status_code == 200
    assert loop.passes == before  # two commits, no pass

    response = await http.post(
        "/api/webhooks",
        json={"url": receiver.url, "event_types": ["session.started"]},
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    await loop.settled()
    assert webhooks.in_use is True
    started = await world.start()
    # Delivered at once: the commit woke the sender (its periodic pass is 300 s away).
    (got,) = await receiver.wait_count(1)
    assert got.body["data"]["session_id"] == started["id"]
    # The pass that sent it has recorded the answer (no request in flight when the app stops:
    # an aiohttp connection cut off mid-answer is an unclosed-resource warning later).
    await loop.settled()

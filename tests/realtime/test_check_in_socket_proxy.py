"""``checkIn`` behind a trusted proxy: the socket's address is the one ``X-Forwarded-For`` names,
by the rule the HTTP check-in uses (``TRUSTED_PROXIES``), on both transports."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from attendance_live.config import Settings
from tests.helpers import Recorder, World


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual settings, with loopback (where the test clients connect from) a trusted proxy."""
    return Settings(**{**settings.model_dump(), "trusted_proxies": "127.0.0.0/8"})


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_the_forwarded_address_is_the_one_the_network_rule_and_the_audit_see(
    live_url: str, world: World, recorders: Callable[[str], Recorder], transport: str
) -> None:
    sid = (await world.start(allowed_networks=["10.20.0.0/16"]))["id"]
    teacher = recorders("teacher")
    await teacher.connect(live_url, world.teacher.token)
    await teacher.call("subscribeToSession", {"session_id": sid})
    for user, forwarded in (("s1", "10.20.0.9"), ("s2", "10.20.0.9, 192.0.2.8")):
        student = recorders(user)
        await student.client.connect(
            live_url,
            auth={"token": world.users[user].token},
            headers={"X-Forwarded-For": forwarded},
            transports=[transport],
            wait_timeout=5,
        )
        answer = await student.call("checkIn", {"session_id": sid, "device_id": f"d-{user}"})
        if user == "s1":
            assert answer["ok"] is True, answer
            update = await teacher.next("attendanceUpdated")
            assert (update["user_id"], update["audit"]["address"]) == ("s1", "10.20.0.9")
        else:
            # The right-most untrusted hop is the client; what it wrote itself before it is not believed.
            assert answer["reason"] == "network_not_allowed"
            assert "(your address is 192.0.2.8)" in answer["message"]

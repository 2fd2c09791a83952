"""Deadlines on one loop timer: fire once, in order; moved and cancelled ones do not fire."""

from __future__ import annotations

import asyncio

import pytest

from attendance_live.payloads import PayloadError
from attendance_live.realtime.expiry import Deadlines, expiry_body, require_token


class WallClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_due_deadlines_fire_once_in_order_and_moved_or_cancelled_ones_do_not() -> None:
    clock = WallClock()
    fired: list[str] = []
    done = asyncio.Event()

    def on_due(key: str) -> None:
        fired.append(key)
        if key == "last":
            done.set()

    deadlines = Deadlines(on_due, clock=clock)
    deadlines.set("cancelled", clock.now - 5)
    deadlines.cancel("cancelled")
    deadlines.set("moved", clock.now - 4)
    deadlines.set("moved", clock.now + 3600)  # a refresh: not due any more
    for i in range(200):  # many moves of one key keep one live deadline
        deadlines.set("busy", clock.now + 7200 + i)
    deadlines.set("second", clock.now - 2)
    deadlines.set("first", clock.now - 3)
    deadlines.set("last", clock.now - 1)
    await asyncio.wait_for(done.wait(), 5)
    assert fired == ["first", "second", "last"]
    assert len(deadlines) == 2
    assert "moved" in deadlines
    assert "busy" in deadlines
    deadlines.close()
    assert len(deadlines) == 0


def test_refresh_payload_and_bodies() -> None:
    assert require_token(({"token": "abc"},)) == "abc"
    for args in ((), (None,), ("abc",), ({"token": 5},), ({"token": " "},), ({"token": "x" * 9000},)):
        with pytest.raises(PayloadError, match="token"):
            require_token(args)
    assert expiry_body("expired_at", 1705314600.5) == {"expired_at": "2024-01-15T10:30:00.500Z"}

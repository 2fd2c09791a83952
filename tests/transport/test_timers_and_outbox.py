"""One timer for all deadlines; the bounded outgoing buffer."""

from __future__ import annotations

import asyncio

from attendance_live.transport.outbox import Outbox
from attendance_live.transport.timers import TimerWheel


async def test_deadlines_of_several_lanes_fire_in_time_order_from_one_handle() -> None:
    wheel = TimerWheel(asyncio.get_running_loop())
    short, long = wheel.lane(0.01), wheel.lane(0.03)
    fired: list[str] = []
    done = asyncio.Event()

    def last() -> None:
        fired.append("long")
        done.set()

    long.add(last)
    short.add(lambda: fired.append("short-1"))
    cancelled = short.add(lambda: fired.append("cancelled"))
    short.add(lambda: fired.append("short-2"))
    cancelled.cancel()
    await done.wait()
    assert fired == ["short-1", "short-2", "long"]
    assert len(short) == 0
    assert len(long) == 0
    wheel.close()


async def test_a_deadline_added_after_the_lane_emptied_still_fires() -> None:
    wheel = TimerWheel(asyncio.get_running_loop())
    lane = wheel.lane(0.005)
    first, second = asyncio.Event(), asyncio.Event()
    lane.add(first.set)
    await first.wait()
    lane.add(second.set)
    await second.wait()
    wheel.close()


def test_the_outbox_reports_overflow_past_its_limit_and_empties_in_order() -> None:
    outbox = Outbox(limit=10)
    assert outbox.push("4hello")
    assert outbox.push(b"1234")
    assert not outbox.push("4x")  # 12 > 10: the caller closes the connection
    assert outbox.size == 12
    assert outbox.take_all() == ["4hello", b"1234", "4x"]
    assert (outbox.size, len(outbox), bool(outbox)) == (0, 0, False)

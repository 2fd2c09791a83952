"""When ``realtime.collector`` runs a full collection: once the connections closed since the
last one reach half of those open (at least its floor), on the loop's next turn.

That it stops the growth is the soak's to show (``bench/soak.py``: RSS flat within 5 % under
churn; it runs in CI): in process, a closed connection stays referenced by the heartbeat wheel
for up to a ping period, so a test here could not tell a cycle from a live reference.
"""

from __future__ import annotations

import asyncio

from attendance_live.realtime.collector import CycleCollector


async def test_a_collection_runs_once_half_the_open_connections_have_closed() -> None:
    live = 4
    collector = CycleCollector(lambda: live, min_closed=3)
    for _ in range(2):
        collector.closed()
    await asyncio.sleep(0)
    assert collector.collections == 0
    collector.closed()  # 3 closed: the floor (half of the 4 open is less)
    await asyncio.sleep(0)  # it runs on the loop's next turn, not inside the disconnect
    assert (collector.collections, collector.closed_since) == (1, 0)
    live = 1000
    for _ in range(499):
        collector.closed()
    await asyncio.sleep(0)
    assert collector.collections == 1  # 499 of 1,000 open: not yet
    collector.closed()
    await asyncio.sleep(0)
    assert collector.collections == 2

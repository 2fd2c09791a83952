"""A node's committed rows reach the other nodes over Redis one message per write group, not one
per check-in (issue 22)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine, event

from attendance_live.app import Application
from attendance_live.config import Settings
from attendance_live.realtime.relay_messages import CHANNEL, decode_rows
from attendance_live.service.outbox import RECORD, OutboxRow
from tests.helpers import World
from tests.infra.redis import RedisServer

STUDENTS = 12


@pytest.fixture
def settings(settings: Settings, redis_running: RedisServer) -> Settings:
    return settings.model_copy(update={"redis_url": redis_running.url})


@pytest.fixture
async def heard(redis_running: RedisServer) -> AsyncIterator[list[list[OutboxRow]]]:
    """The rows of every message on the relay's channel, one list a message."""
    messages: list[list[OutboxRow]] = []
    client = aioredis.Redis.from_url(redis_running.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)

    async def listen() -> None:
        async for message in pubsub.listen():
            messages.append(decode_rows(message["data"])[1])

    task = asyncio.create_task(listen())
    yield messages
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pubsub.aclose()
    await client.aclose()


@contextmanager
def commits() -> Iterator[list[object]]:
    """Every transaction any engine of this process commits while the block runs."""
    seen: list[object] = []

    def record(conn: Any) -> None:
        seen.append(conn)

    event.listen(Engine, "commit", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", record)


async def test_a_group_of_check_ins_is_published_once(
    app: Application, http: httpx.AsyncClient, world: World, heard: list[list[OutboxRow]]
) -> None:
    students = [world.user(f"r{i}", f"Student {i}") for i in range(STUDENTS)]
    for student in students:
        response = await http.put(
            f"/api/courses/{world.course_id}/enrollments/{student.id}",
            json={"status": "approved", "name": student.name},
            headers=world.teacher.headers,
        )
        assert response.status_code in (200, 201), response.text
    session = await world.start()
    await app.relay.idle()
    heard.clear()
    with commits() as committed:
        answers = await asyncio.gather(
            *(http.post(f"/api/sessions/{session['id']}/check-in", headers=s.headers) for s in students)
        )
        assert [a.status_code for a in answers] == [200] * STUDENTS
        await app.relay.idle()
        # Every record row has reached Redis (the publisher runs beside the check-ins).
        for _ in range(100):
            if sum(len([r for r in m if r.kind == RECORD]) for m in heard) == STUDENTS:
                break
            await asyncio.sleep(0.05)
    records = [[r for r in rows if r.kind == RECORD] for rows in heard]
    records = [rows for rows in records if rows]
    assert sorted(r.payload["user_id"] for rows in records for r in rows) == sorted(s.id for s in students)
    # One message per write group at most (the check-ins ran in fewer groups than check-ins).
    assert len(records) <= len(committed)
    assert len(records) < STUDENTS

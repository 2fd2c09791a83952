"""What connecting and checking in cost the database (issue 22): no write for a known, unchanged
user; a changed one written once; a burst of subscribes reading the course's members once; no
statistics query for a check-in while nobody follows the session's roster; recovery rows written
in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select

from attendance_live.app import Application
from attendance_live.db.models import User
from tests.helpers import Recorder, World

Make = Callable[[str], Recorder]


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def user_writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith(("insert into users", "update users"))]


def user_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith("select users.id, users.name")]


async def test_a_known_unchanged_user_connects_without_a_write(
    live_url: str, world: World, app: Application, recorders: Make
) -> None:
    users = app.context.service.users
    await users.flush()  # the setup's own refreshes
    with statements() as first:
        await recorders("s1").connect(live_url, world.users["s1"].token)
        await users.flush()
    # Its row was written at enrollment with the same name: read once (not cached yet), not written.
    assert user_writes(first) == []
    assert len(user_reads(first)) == 1
    with statements() as again:
        await recorders("s1 again").connect(live_url, world.users["s1"].token)
        await users.flush()
    assert [s for s in again if "users" in s] == []  # known now: not even a query
    async with app.context.database.read() as db:
        assert (await db.execute(select(User.name).where(User.id == "s1"))).scalar_one() == "Alice"


async def test_a_changed_name_is_written_once(
    live_url: str, world: World, app: Application, recorders: Make
) -> None:
    users = app.context.service.users
    await users.flush()
    renamed = world.tokens.mint("s2", name="Bilal Renamed", ttl_seconds=600)
    with statements() as seen:
        for i in range(3):  # three sockets of the same user at once: one write
            await recorders(f"s2-{i}").connect(live_url, renamed)
        await users.flush()
    assert len(user_writes(seen)) == 1
    async with app.context.database.read() as db:
        assert (await db.execute(select(User.name).where(User.id == "s2"))).scalar_one() == "Bilal Renamed"
    with statements() as later:
        await recorders("s2 later").connect(live_url, renamed)
        await users.flush()
    assert [s for s in later if "users" in s] == []
    # A token without a name (the name is the user's id) keeps the stored one: no write either.
    unnamed = world.tokens.mint("s2", ttl_seconds=600)
    with statements() as plain:
        await recorders("s2 unnamed").connect(live_url, unnamed)
        await users.flush()
    assert user_writes(plain) == []


async def test_a_burst_of_subscribes_reads_the_members_once(
    live_url: str, world: World, app: Application, recorders: Make
) -> None:
    clients = []
    for i in range(4):
        for student in ("s1", "s2", "s3"):
            client = recorders(f"{student}-{i}")
            await client.connect(live_url, world.users[student].token)
            clients.append(client)
    app.context.service.caches.members.invalidate(world.course_id)  # as after a restart
    with statements() as seen:
        answers = await asyncio.gather(
            *(c.call("subscribeToCourse", {"course_id": world.course_id}) for c in clients)
        )
    assert all(a["course_id"] == world.course_id for a in answers), answers
    for client in clients:
        assert (await client.next("activeSessionsData"))["course_id"] == world.course_id
    member_reads = [s for s in seen if s.startswith("select enrollments.user_id, enrollments.status")]
    assert 1 <= len(member_reads) < len(clients)
    # Each subscription's recovery row is stored before it is answered, in batches.
    pid_inserts = [s for s in seen if s.startswith("insert into recovery_sessions")]
    assert 1 <= len(pid_inserts) < len(clients)


def statistics_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith("select attendance_records.status, count(*)")]


async def test_a_check_in_reads_statistics_only_for_the_rosters_followers(
    live_url: str, world: World, app: Application, recorders: Make
) -> None:
    session = await world.start()
    await app.relay.idle()
    with statements() as unfollowed:
        assert (await world.check_in("s1", session["id"])).status_code == 200
        await app.relay.idle()
    assert statistics_reads(unfollowed) == []
    teacher = recorders("teacher")
    await teacher.connect(live_url, world.teacher.token)
    await teacher.call("subscribeToSession", {"session_id": session["id"]})
    with statements() as followed:
        assert (await world.check_in("s2", session["id"])).status_code == 200
        update = await teacher.next("attendanceUpdated")
        await app.relay.idle()
    assert update["user_id"] == "s2"
    assert update["statistics"]["present"] == 2
    assert len(statistics_reads(followed)) == 1

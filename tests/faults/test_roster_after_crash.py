"""A node killed between a start's commit and its roster's rows (issue 22): nobody misses a student.

The start is durable once its session row and outbox rows have committed; the roster's
``absent`` rows are a second transaction. Node ``a`` kills itself (SIGKILL) right after
the first commit (``KILL_AFTER_COMMIT_FOR_TESTS=courseSessionStarted``), so the second
never runs there: the other node's relay, or ``a`` itself at its next start, writes them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from attendance_live.config import normalise_database_url
from attendance_live.db.engine import Database
from attendance_live.db.models import AttendanceRecord, AttendanceSession
from tests.faults.conftest import Deployment, assert_clean_log, prepare_database
from tests.faults.live import COURSE, end_session, get_session, poll, start_session
from tests.process import ServerProcess, cli_env

pytestmark = pytest.mark.faults

STUDENTS = {f"demo-student-{n}" for n in range(1, 6)}  # the demo course's approved students


@pytest.fixture
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Processes on one SQLite file, no Redis: they learn of each other's rows from the outbox."""
    env = cli_env(f"sqlite:///{tmp_path / 'shared.db'}")
    deployment = Deployment(tmp_path, env, await asyncio.to_thread(prepare_database, env, tmp_path))
    try:
        yield deployment
    finally:
        await deployment.close()


@pytest.fixture(params=["postgresql-redis", "sqlite"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    fixture = "cluster" if request.param == "postgresql-redis" else "sqlite_pair"
    found: Deployment = request.getfixturevalue(fixture)
    return found


async def roster_rows(deployment: Deployment) -> tuple[str, dict[str, str], bool]:
    """The demo course's latest session: its id, stored records and whether its roster is pending."""
    database = Database(normalise_database_url(deployment.env["DATABASE_URL"]))
    try:
        async with database.read() as db:
            sid, pending = (
                await db.execute(
                    select(AttendanceSession.id, AttendanceSession.roster_pending)
                    .where(AttendanceSession.course_id == COURSE)
                    .order_by(AttendanceSession.started_at.desc())
                    .limit(1)
                )
            ).one()
            rows = await db.execute(
                select(AttendanceRecord.user_id, AttendanceRecord.status).where(
                    AttendanceRecord.session_id == sid
                )
            )
            return sid, {user_id: status for user_id, status in rows}, bool(pending)
    finally:
        await database.dispose()


async def start_and_die(deployment: Deployment, doomed: ServerProcess) -> str:
    """Start a session through ``doomed``, which dies right after the commit; the session's id."""
    async with httpx.AsyncClient(base_url=doomed.url, timeout=10) as via_doomed:
        with pytest.raises(httpx.TransportError):
            await start_session(via_doomed, "roster after a crash")
    process = doomed.process
    assert process is not None

    async def died() -> bool:
        return process.poll() is not None

    await poll(died, timeout=10, what="the node killing itself after its commit")
    assert process.returncode == -signal.SIGKILL
    sid, _, _ = await roster_rows(deployment)
    return sid


def doomed_node(deployment: Deployment) -> ServerProcess:
    doomed = ServerProcess(
        {**deployment.env, "KILL_AFTER_COMMIT_FOR_TESTS": "courseSessionStarted"}, deployment.tmp / "a.log"
    )
    deployment.nodes["a"] = doomed
    return doomed


async def test_the_other_node_writes_the_roster_of_a_start_whose_node_died(deployment: Deployment) -> None:
    (b,) = await deployment.start("b")
    doomed = doomed_node(deployment)
    await doomed.start()
    sid = await start_and_die(deployment, doomed)
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as via_b:
        # Whether b has written the rows yet or not, the roster reads the same.
        body = await get_session(via_b, sid)
        assert {r["user_id"]: r["status"] for r in body["records"]} == dict.fromkeys(STUDENTS, "absent")
        stats = body["statistics"]
        assert (stats["present"], stats["absent"], stats["total"]) == (0, 5, 5)

        async def written() -> bool:
            return (await roster_rows(deployment))[2] is False

        await poll(written, timeout=20, what="node b writing the roster of a's start")
        assert await roster_rows(deployment) == (sid, dict.fromkeys(STUDENTS, "absent"), False)
        ended = await end_session(via_b, sid)
        final = ended["final_statistics"]
        assert (final["present"], final["absent"], final["total"]) == (0, 5, 5)
    assert_clean_log(b)


async def test_a_restarted_node_writes_the_roster_before_it_answers(deployment: Deployment) -> None:
    doomed = doomed_node(deployment)
    await doomed.start()
    sid = await start_and_die(deployment, doomed)
    assert await roster_rows(deployment) == (sid, {}, True)  # nobody else is there to write it
    (again,) = await deployment.start("a-again")
    assert await roster_rows(deployment) == (sid, dict.fromkeys(STUDENTS, "absent"), False)
    async with httpx.AsyncClient(base_url=again.url, timeout=10) as via_again:
        ended = await end_session(via_again, sid)
    final = ended["final_statistics"]
    assert (final["present"], final["absent"], final["total"]) == (0, 5, 5)
    assert "completed the roster of 1 session(s) started before a crash" in again.log()
    assert_clean_log(again)

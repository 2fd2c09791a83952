"""Real processes: a restart after SIGKILL keeps everything; SIGTERM drains cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import socketio

from tests.helpers import bearer, token
from tests.process import ServerProcess, cli_env, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = cli_env(f"sqlite:///{tmp_path / 'live.db'}")
    seeded = run_cli("demo", "--json", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    process = ServerProcess(env, tmp_path / "server.log")
    await process.start()
    yield process
    await process.stop()


async def test_sigkill_then_restart_keeps_the_active_session_and_check_ins(server: ServerProcess) -> None:
    teacher = bearer("demo-teacher", "teacher")
    async with httpx.AsyncClient(base_url=server.url) as http:
        started = await http.post(
            "/api/courses/demo-course/sessions", json={"topic": "Kill me"}, headers=teacher
        )
        assert started.status_code == 201
        sid = started.json()["id"]
        for student in ("demo-student-1", "demo-student-3"):
            response = await http.post(f"/api/sessions/{sid}/check-in", headers=bearer(student))
            assert response.status_code == 200
        marked = await http.put(
            f"/api/sessions/{sid}/records/demo-student-2",
            json={"status": "excused", "remarks": "away"},
            headers=teacher,
        )
        assert marked.status_code == 200

    assert await server.signal(signal.SIGKILL) == -signal.SIGKILL
    await server.start()

    async with httpx.AsyncClient(base_url=server.url) as http:
        body = (await http.get(f"/api/sessions/{sid}", headers=teacher)).json()
        assert body["status"] == "active"
        assert body["topic"] == "Kill me"
        statuses = {r["user_id"]: r["status"] for r in body["records"]}
        assert statuses == {
            "demo-student-1": "present",
            "demo-student-2": "excused",
            "demo-student-3": "present",
            "demo-student-4": "absent",
            "demo-student-5": "absent",
        }
        active = (await http.get("/api/courses/demo-course/active-sessions", headers=teacher)).json()
        assert active["activeSessions"][0]["studentCount"] == 2
        # and the session goes on: it can be ended after the restart
        ended = await http.post(f"/api/sessions/{sid}/end", headers=teacher)
        assert ended.json()["final_statistics"]["present"] == 2


async def test_sigterm_closes_sockets_and_exits_cleanly(server: ServerProcess) -> None:
    client = socketio.AsyncClient(reconnection=False)
    gone = asyncio.Event()

    async def on_disconnect(reason: object = None) -> None:
        gone.set()

    client.on("disconnect", on_disconnect)
    await client.connect(
        server.url, auth={"token": token("demo-student-1")}, transports=["polling"], wait_timeout=5
    )
    # uvicorn re-raises the signal after its graceful shutdown, so "killed by SIGTERM"
    assert await server.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
    await asyncio.wait_for(gone.wait(), 10)
    log = server.log()
    assert "Traceback" not in log
    assert "Application shutdown complete" in log

"""The command line: demo, token, migrate, configuration errors, watch."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from tests.helpers import SECRET
from tests.process import ServerProcess, cli_env, run_cli


def test_demo_is_idempotent_and_prints_usable_tokens(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'demo.db'}")
    first = run_cli("demo", "--json", env=env)
    assert first.returncode == 0, first.stderr
    again = run_cli("demo", "--json", env=env)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["course"]["id"] == "demo-course"
    assert data["teacher"]["role"] == "teacher"
    assert [s["enrollment"] for s in data["students"]] == ["approved"] * 5 + ["pending"]
    claims = jwt.decode(data["students"][0]["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "demo-student-1"
    assert len(data["curl"]) == 3
    human = run_cli("demo", env=env)
    assert "curl -s -X POST" in human.stdout
    assert "demo-student-6 (pending)" in human.stdout
    # printed as it can be run from here: this interpreter, as the venv was never activated
    watch = next(line for line in human.stdout.splitlines() if line.startswith("Watch it live:"))
    assert watch.split()[3:6] == [sys.executable, "-m", "attendance_live"]


def test_token_command(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 't.db'}")
    result = run_cli("token", "u-42", "--name", "Zoe", "--role", "teacher", "--ttl", "120", env=env)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["role"]) == ("u-42", "Zoe", "teacher")
    assert claims["exp"] - claims["iat"] == 120
    bad = run_cli("token", "has space", env=env)
    assert bad.returncode == 2
    assert "USER_ID" in bad.stderr


def test_generated_secret_is_shared_and_private(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'g.db'}")
    del env["ACCESS_TOKEN_SECRET"]
    first = run_cli("token", "someone", env=env, cwd=tmp_path)
    second = run_cli("token", "someone", env=env, cwd=tmp_path)
    secret_file = tmp_path / ".attendance-live-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    for result in (first, second):
        jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
        assert result.stderr.count("ACCESS_TOKEN_SECRET is not set") == 1
        assert secret not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ACCESS_TOKEN_SECRET", "tiny-secret-value", "shorter than 32 bytes"),
        ("DATABASE_URL", "mysql://x/y", "unsupported database"),
        ("DATABASE_URL", "::::", "not a database URL"),
        ("PORT", "eighty", "PORT"),
        ("PORT", "70000", "PORT"),
        ("REDIS_URL", "http://localhost", "not a Redis URL"),
        ("SESSION_MAX_MINUTES", "0", "SESSION_MAX_MINUTES"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
    ],
)
def test_bad_configuration_stops_with_one_line(tmp_path: Path, variable: str, value: str, says: str) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'c.db'}")
    env[variable] = value
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {variable} ")
    assert says in lines[0]
    if variable == "ACCESS_TOKEN_SECRET":
        assert value not in lines[0]


def test_migrate_command(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'm.db'}")
    result = run_cli("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert "revision 0007" in result.stdout
    assert run_cli("migrate", env=env).returncode == 0


async def test_watch_prints_events_as_they_happen(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'w.db'}")
    demo = json.loads(run_cli("demo", "--json", env=env).stdout)
    server = ServerProcess(env, tmp_path / "server.log")
    await server.start()
    try:
        watcher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "attendance_live",
            "watch",
            "demo-course",
            "--url",
            server.url,
            "--max-events",
            "3",
            env={**env, "ATTENDANCE_LIVE_TOKEN": demo["students"][0]["token"]},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert watcher.stdout is not None
        first = await asyncio.wait_for(watcher.stdout.readline(), 30)
        assert b"subscribing to course demo-course" in first
        snapshot = await asyncio.wait_for(watcher.stdout.readline(), 30)
        assert b"no active sessions" in snapshot
        teacher = {"Authorization": f"Bearer {demo['teacher']['token']}"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            started = await http.post(
                "/api/courses/demo-course/sessions", json={"topic": "Live"}, headers=teacher
            )
        out, err = await asyncio.wait_for(watcher.communicate(), 30)
        assert watcher.returncode == 0, err
        text = out.decode()
        assert f"session {started.json()['id']} \u201cLive\u201d started by Grace Hopper" in text
        assert demo["students"][0]["token"] not in text + err.decode()
    finally:
        await server.stop()


def test_watch_without_a_token_says_how_to_give_one(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'x.db'}")
    env.pop("ATTENDANCE_LIVE_TOKEN", None)
    result = run_cli("watch", "demo-course", env=env)
    assert result.returncode == 2
    assert "--token" in result.stderr
    assert "ATTENDANCE_LIVE_TOKEN" in result.stderr


def test_serve_on_a_taken_port_fails_at_once_with_the_fix(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'p.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--demo", "--port", str(port), env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"Port {port} on 127.0.0.1 is already in use (another attendance-live?): "
        "stop that process, or choose another port with --port or PORT"
    ]
    # Nothing announced before the failure: no demo tokens, no "ready", no "listening".
    assert result.stdout == ""
    assert not (tmp_path / "p.db").exists()


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_unreachable_postgresql_is_one_line_naming_host_and_port(tmp_path: Path, command: str) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = cli_env(f"postgresql://someone:hunter2-password@127.0.0.1:{port}/attendance")
    result = run_cli(command, env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Cannot reach PostgreSQL at 127.0.0.1:{port} ")
    assert "check that the server is running" in lines[0]
    assert "hunter2" not in result.stderr
    assert result.stdout == ""
    debug = run_cli(command, env={**env, "LOG_LEVEL": "debug"}, cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "hunter2" not in debug.stderr

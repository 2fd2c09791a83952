"""Real server processes for tests that restart, kill or signal them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import SECRET
from tests.infra import free_port


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ACCESS_TOKEN"))}
    env.update(ACCESS_TOKEN_SECRET=SECRET, DATABASE_URL=database_url, LOG_LEVEL="info", **extra)
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attendance_live", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class ServerProcess:
    """``attendance-live serve`` in a child process, on a fixed loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; we poll it
                [sys.executable, "-m", "attendance_live", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited with {self.process.returncode}: {self.log()}")
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"server did not answer /healthz within 30 s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    async def signal(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        for _ in range(600):
            code = self.process.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        self.process.kill()
        raise AssertionError(f"server did not exit within 30 s of signal {signum}: {self.log()}")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            await self.signal(signal.SIGKILL)

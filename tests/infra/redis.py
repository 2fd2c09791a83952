"""A throw-away Redis server on loopback, from Debian's ``redis-server`` package.

No persistence (no RDB snapshots, no AOF): stopping it loses its data, which
is what an outage test wants. It keeps its port across ``stop()``/``start()``
so clients configured with its URL reconnect to the same address.
"""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
from pathlib import Path

from tests.infra._process import (
    ServiceChild,
    ServiceUnavailable,
    ensure_installed,
    free_port,
    wait_until,
)

__all__ = ["RedisServer"]

START_TIMEOUT_SECONDS = 30.0


class RedisServer:
    def __init__(self, *, port: int | None = None, base_dir: Path | None = None) -> None:
        self.binary = ensure_installed(
            "redis-server",
            ["/usr/bin/redis-server", "/usr/local/bin/redis-server"],
            what="Redis (redis-server)",
        )
        self.port = port or free_port()
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="attendance-redis-"))
        self.log_path = self.base_dir / "redis.log"
        self._child: ServiceChild | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (the form REDIS_URL takes)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def start(self) -> None:
        if self.running:
            return
        argv = [
            str(self.binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.base_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
            "--loglevel",
            "warning",
        ]
        self._child = ServiceChild("redis", argv, self.log_path, cwd=self.base_dir)
        self._child.start()
        if not wait_until(self._ready, timeout=START_TIMEOUT_SECONDS, interval=0.05):
            log = self._child.log()
            self._child.kill()
            raise ServiceUnavailable(f"Redis did not answer PING on port {self.port}:\n{log}")

    def _ready(self) -> bool:
        if self._child is not None and self._child.exited() is not None:
            raise ServiceUnavailable(
                f"Redis exited with {self._child.exited()} at start:\n{self._child.log()}"
            )
        return self.ping()

    def ping(self) -> bool:
        """Whether the server answers PING (a raw RESP exchange; no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Shut down (SIGTERM; nothing to save): every client's connection is closed."""
        if self._child is not None:
            self._child.stop(signal.SIGTERM, timeout=15)

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self._child is not None:
            self._child.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def log(self, chars: int = 4000) -> str:
        return self._child.log(chars) if self._child is not None else ""

"""A throw-away PostgreSQL server on loopback, from Debian's ``postgresql`` package.

The cluster lives in a temporary directory owned by the ``postgres`` OS user
(PostgreSQL refuses to run as root), listens on 127.0.0.1 only, and trades
durability for speed (``fsync=off``): it is for tests, and a crash of the
*server process* (what the fault tests do) loses nothing even so; only an OS
crash would.

    server = PostgresServer(); server.start()
    server.create_database("t1"); url = server.dsn("t1")   # postgresql://USER:PASS@127.0.0.1:PORT/t1
    server.stop(); server.start()                           # a restart, same port and data
    server.close()                                          # stop and delete everything
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.infra._process import (
    ServiceChild,
    ServiceUnavailable,
    ensure_installed,
    free_port,
    wait_until,
)

__all__ = ["PostgresServer"]

OS_USER = "postgres"
START_TIMEOUT_SECONDS = 60.0
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Speed over durability: nothing here has to survive a power cut.
TEST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_connections": "off",
    "log_disconnections": "off",
    # Dynamic shared memory in the data directory rather than /dev/shm: on a shared machine
    # something else (a container runtime setting up its mounts) can empty /dev/shm under a
    # running server, which then fails every query with "could not open shared memory segment".
    "dynamic_shared_memory_type": "mmap",
}


class PostgresServer:
    """initdb once, then start and stop at will on one fixed loopback port."""

    user = "attendance"
    password = "attendance-test-password"  # only ever listens on 127.0.0.1

    def __init__(
        self, *, port: int | None = None, base_dir: Path | None = None, durable: bool = False
    ) -> None:
        postgres = ensure_installed(
            "postgresql", ["/usr/lib/postgresql/*/bin/postgres"], what="PostgreSQL (postgres)"
        )
        self.bin_dir = postgres.parent
        try:
            self._os_user = pwd.getpwnam(OS_USER)
        except KeyError:
            raise ServiceUnavailable(
                f"the {OS_USER!r} OS user that Debian's postgresql package creates is missing; "
                "reinstall it with `apt-get install --reinstall -y postgresql-common`"
            ) from None
        self.port = port or free_port()
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="attendance-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "postgres.log"
        self._child: ServiceChild | None = None
        self._initialised = False
        # durable: PostgreSQL's own defaults for fsync and commits (for benchmarks that
        # promise durability); otherwise TEST_SETTINGS trade it for speed.
        self.settings = {
            k: v
            for k, v in TEST_SETTINGS.items()
            if not durable or k not in ("fsync", "synchronous_commit", "full_page_writes", "wal_level")
        }

    # --- addresses ---

    def dsn(self, dbname: str = "postgres") -> str:
        """``postgresql://USER:PASS@127.0.0.1:PORT/DBNAME`` (the form DATABASE_URL takes)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    # --- lifecycle ---

    def _as_postgres(self, path: Path) -> None:
        os.chown(path, self._os_user.pw_uid, self._os_user.pw_gid)

    def _initdb(self) -> None:
        self._as_postgres(self.base_dir)
        self.socket_dir.mkdir(exist_ok=True)
        self._as_postgres(self.socket_dir)
        password_file = self.base_dir / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        self._as_postgres(password_file)
        done = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--pwfile",
                str(password_file),
                "--auth-host",
                "scram-sha-256",
                "--auth-local",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            user=OS_USER,
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        password_file.unlink()
        if done.returncode != 0:
            raise ServiceUnavailable(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        self._initialised = True

    def start(self) -> None:
        """Start the server (initialising the cluster the first time) and wait until it answers."""
        if not self._initialised:
            self._initdb()
        if self._child is not None and self._child.running:
            return
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        argv += ["-k", str(self.socket_dir)]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        self._child = ServiceChild("postgres", argv, self.log_path, user=OS_USER, cwd=self.base_dir)
        self._child.start()
        if not wait_until(self._ready, timeout=START_TIMEOUT_SECONDS, interval=0.1):
            log = self._child.log()
            self._child.kill()
            raise ServiceUnavailable(f"PostgreSQL did not accept connections on port {self.port}:\n{log}")

    def _ready(self) -> bool:
        if self._child is not None and self._child.exited() is not None:
            raise ServiceUnavailable(
                f"PostgreSQL exited with {self._child.exited()} at start:\n{self._child.log()}"
            )
        probe = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return probe.returncode == 0

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs (its backends are its children)."""
        return self._child.pid if self._child is not None else None

    def stop(self, *, mode: str = "fast") -> None:
        """Shut down: ``fast`` (SIGINT: abort transactions, close clients), ``smart`` or ``immediate``."""
        signum = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if self._child is not None:
            self._child.stop(signum, timeout=30)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (a crash; the next start recovers from WAL)."""
        if self._child is not None:
            self._child.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its files."""
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def log(self, chars: int = 4000) -> str:
        return self._child.log(chars) if self._child is not None else ""

    # --- databases ---

    def psql(self, sql: str, *, dbname: str = "postgres") -> str:
        """Run ``sql`` as the superuser over TCP; return psql's unaligned, tuples-only output."""
        done = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                dbname,
                "-c",
                sql,
            ],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}) on {sql!r}: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create an empty database; return its DSN."""
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_NAME.pattern}")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing its open connections first."""
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_NAME.pattern}")
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

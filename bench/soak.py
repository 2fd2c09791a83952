#!/usr/bin/env python3
"""Soak: N clients under steady churn against one node; its resources must not creep up.

    .venv/bin/python bench/soak.py                                   # N=2,000, 30 minutes
    .venv/bin/python bench/soak.py --n 200 --minutes 2 --warmup-minutes 0.5 --sample-seconds 10   # CI

One of our servers (SQLite, default settings but ``HTTP_RATE_LIMITS=false``: the
churn's check-ins all come from one loopback address). N students follow one
course over websockets, as socket.io-client does (they keep the CONNECT reply's
``pid`` and the last offset). Then, for ``--minutes``, every second:

* **sessions**: the teacher ends the running session and starts the next one
  every ``--session-seconds`` (each start and end reaches all N subscribers);
* **check-ins**: ``--checkins`` students check in over HTTP (to the running session);
* **disconnects**: ``--leaves`` students close their socket and come back as new
  connections (new pid, subscribe again);
* **blips**: ``--blips`` students lose their connection (RST) and come back
  ``--blip-seconds`` later with ``auth: {token, pid, offset}`` (connection state
  recovery: same pid, their subscription and missed events back).

Every ``--sample-seconds`` the churn pauses for a second (so in-flight requests
settle), then the server's RSS and open file descriptors (``/proc``), its
asyncio tasks and the deadlines its timers hold (``/metrics``:
``attendance_asyncio_tasks``, ``attendance_timer_entries``) are read and printed
with the connection count. After ``--warmup-minutes`` (the baseline: the first
sample at or after it) no later sample of any of the four may exceed the
baseline by more than ``--growth`` (5 %); the exit status says whether that
held (1 when not), and the curve is printed as JSON (``--json`` also writes it
to a file). Loopback only; bounded by ``--minutes``.
"""

# A benchmark driver: time limits are parameters.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import aiohttp  # noqa: E402
from loadgen import Conn, Worker, _dumps, _loads, mint_tokens, raise_nofile, ws_frame  # noqa: E402
from runner.servers import HOST, ROOT, Server, free_port, log, wait_healthy  # noqa: E402

COURSE = "bench-soak"
PREFIX = "bench-s"
TEACHER = "bench-teacher"
PATH = b"/socket.io/?EIO=4&transport=websocket"
METRICS = ("rss_kib", "fds", "tasks", "timers")


def subscribe_frame() -> bytes:
    return ws_frame(b'42["subscribeToCourse",' + _dumps({"course_id": COURSE}) + b"]")


class SoakConn(Conn):
    """loadgen's connection that keeps its pid and last offset, as socket.io-client does."""

    __slots__ = ("offset", "pid", "recovered")

    def __init__(self, w: Worker, index: int, port: int, auth: dict[str, Any]) -> None:
        sub = subscribe_frame()
        recovering = "pid" in auth
        super().__init__(
            w,
            index,
            "sio",
            f"{HOST}:{port}".encode(),
            PATH,
            ws_frame(b"40" + _dumps(auth)),
            None if recovering else sub,
        )
        self.pid: str | None = None
        self.offset: str | None = auth.get("offset")
        self.recovered: bool | None = None if recovering else False
        if recovering:
            self.pid = auth["pid"]

    def on_packet(self, p: bytes, now: float) -> None:
        if p.startswith(b"40") and self.state == self.SIO_CONNECT:
            pid = _loads(p[2:]).get("pid")
            if self.recovered is None:
                self.recovered = pid == self.pid
                if not self.recovered and self.sub_frame is None:
                    # A fresh pid: subscribe again, as the seed's hook does on connect.
                    self.sub_frame = ws_frame(
                        b'42["subscribeToCourse",' + _dumps({"course_id": COURSE}) + b"]"
                    )
            self.pid = pid
        elif p.startswith(b"42") and p.endswith(b'"]'):
            start = p.rfind(b',"')
            if start > 0 and p[start + 2 : -2].isdigit():
                self.offset = p[start + 2 : -2].decode()
        super().on_packet(p, now)


@dataclass
class Counts:
    connects: int = 0
    recoveries: int = 0
    recovered: int = 0
    leaves: int = 0
    sessions: int = 0
    checkins: int = 0
    checkin_errors: int = 0
    connect_errors: dict[str, int] = field(default_factory=dict)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.secret = secrets.token_urlsafe(36)
        self.tmp = tempfile.mkdtemp(prefix="attendance-soak-")
        self.tokens = mint_tokens(self.secret, PREFIX, 0, args.n, 7 * 86400)
        self.teacher = mint_tokens(self.secret, TEACHER, 0, 1, 7 * 86400, role="teacher")[0]
        self.worker = Worker()
        self.conns: list[SoakConn | None] = [None] * args.n
        self.counts = Counts()
        self.session_id: str | None = None
        self.samples: list[dict[str, Any]] = []
        self.rng = random.Random(args.seed)
        self.pending: set[asyncio.Task[None]] = set()
        self.busy: set[int] = set()  # clients in the middle of a leave or a blip

    def server(self) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            ACCESS_TOKEN_SECRET=self.secret,
            DATABASE_URL=f"sqlite+aiosqlite:///{os.path.join(self.tmp, 'soak.db')}",
            LOG_LEVEL="warning",
            HTTP_RATE_LIMITS="false",
        )
        for item in self.args.server_env:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SystemExit(f"--server-env {item!r}: expected NAME=VALUE, e.g. PYTHONMALLOC=malloc")
            env[key] = value
        cmd = [self.args.ours, "serve", "--host", HOST, "--port", str(port)]
        if self.args.wrap:
            cmd = shlex.split(self.args.wrap) + cmd
        return Server("ours", cmd, env, port, os.path.join(self.tmp, "server.log"))

    # -- HTTP -------------------------------------------------------------------------------

    async def api(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.teacher}"}
        async with self.http.request(method, f"{self.base}{path}", json=body, headers=headers) as r:
            data = await r.read()
            return r.status, json.loads(data) if data else None

    async def setup(self) -> None:
        st, body = await self.api("POST", "/api/courses", {"id": COURSE, "code": "SOAK-1", "title": "Soak"})
        if st not in (201, 409):
            raise RuntimeError(f"POST /api/courses -> {st} {body}")
        for start in range(0, self.args.n, 5000):
            items = [
                {"user_id": f"{PREFIX}{i}", "status": "approved", "name": f"Bench User {i}"}
                for i in range(start, min(self.args.n, start + 5000))
            ]
            st, body = await self.api("PUT", f"/api/courses/{COURSE}/enrollments", {"enrollments": items})
            if st != 200:
                raise RuntimeError(f"PUT enrollments -> {st} {body}")

    async def next_session(self) -> None:
        if self.session_id is not None:
            st, body = await self.api("POST", f"/api/sessions/{self.session_id}/end")
            if st not in (200, 409):
                raise RuntimeError(f"end -> {st} {body}")
        st, body = await self.api("POST", f"/api/courses/{COURSE}/sessions", {"topic": "soak"})
        if st != 201:
            raise RuntimeError(f"start -> {st} {body}")
        self.session_id = body["id"]
        self.counts.sessions += 1

    async def check_in(self, index: int) -> None:
        if self.session_id is None:
            return
        st, _ = await self.api("POST", f"/api/sessions/{self.session_id}/check-in", token=self.tokens[index])
        if st == 200:
            self.counts.checkins += 1
        elif st != 409:  # 409: the session ended meanwhile
            self.counts.checkin_errors += 1

    # -- sockets ----------------------------------------------------------------------------

    async def connect(self, index: int, auth: dict[str, Any]) -> None:
        conn = SoakConn(self.worker, index, self.port, auth)
        self.conns[index] = conn
        try:
            await asyncio.get_running_loop().create_connection(lambda: conn, HOST, self.port)
            await asyncio.wait_for(conn.ready, 30)
        except Exception as exc:
            msg = (str(exc) or type(exc).__name__)[:80]
            self.counts.connect_errors[msg] = self.counts.connect_errors.get(msg, 0) + 1
            conn.abort()
            self.conns[index] = None
            return
        self.counts.connects += 1
        if conn.recovered:
            self.counts.recovered += 1

    async def leave(self, index: int) -> None:
        conn = self.conns[index]
        if conn is None or conn.transport is None:
            return
        conn.transport.close()  # a clean close: the server forgets it
        self.conns[index] = None
        self.counts.leaves += 1
        await self.connect(index, {"token": self.tokens[index]})

    async def blip(self, index: int) -> None:
        conn = self.conns[index]
        if conn is None or conn.pid is None:
            return
        pid, offset = conn.pid, conn.offset
        conn.abort()
        self.conns[index] = None
        await asyncio.sleep(self.args.blip_seconds)
        self.counts.recoveries += 1
        auth: dict[str, Any] = {"token": self.tokens[index], "pid": pid}
        if offset is not None:
            auth["offset"] = offset
        await self.connect(index, auth)

    async def one_at_a_time(self, index: int, action: Any) -> None:
        if index in self.busy:
            return
        self.busy.add(index)
        try:
            await action(index)
        finally:
            self.busy.discard(index)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def ramp(self) -> None:
        sem = asyncio.Semaphore(100)

        async def one(i: int) -> None:
            async with sem:
                await self.connect(i, {"token": self.tokens[i]})

        await asyncio.gather(*(one(i) for i in range(self.args.n)))

    # -- measuring --------------------------------------------------------------------------

    async def sample(self, srv: Server, started: float) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/metrics") as r:
            text = (await r.read()).decode()
        gauges: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("attendance_") and " " in line:
                name, value = line.rsplit(" ", 1)
                gauges[name] = float(value)
        fds = 0
        for pid in srv.tree():
            with contextlib.suppress(OSError):
                fds += len(os.listdir(f"/proc/{pid}/fd"))
        files = {}
        for name, suffix in (("db_kib", ""), ("wal_kib", "-wal")):
            with contextlib.suppress(OSError):
                files[name] = os.stat(os.path.join(self.tmp, "soak.db" + suffix)).st_size // 1024
        return {
            "minute": round((time.monotonic() - started) / 60, 2),
            "rss_kib": srv.rss_kib(),
            # What RSS is made of: private memory (the heap), mapped files, shared memory
            # (SQLite's WAL index, the -shm file, is mapped shared).
            "rss_anon_kib": srv.status_kib("RssAnon:"),
            "rss_file_kib": srv.status_kib("RssFile:"),
            "rss_shmem_kib": srv.status_kib("RssShmem:"),
            **files,
            "fds": fds,
            "tasks": int(gauges.get("attendance_asyncio_tasks", -1)),
            "timers": int(gauges.get("attendance_timer_entries", -1)),
            "timer_heap": int(gauges.get("attendance_timer_heap_entries", -1)),
            "connections": int(gauges.get("attendance_socket_connections", -1)),
        }

    async def churn(self, srv: Server) -> None:
        a = self.args
        started = time.monotonic()
        end = started + a.minutes * 60
        next_sample = started + a.sample_seconds
        next_session = started
        n = a.n
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                await asyncio.gather(*list(self.pending), return_exceptions=True)  # settle
                await asyncio.sleep(1.0)
                sample = await self.sample(srv, started)
                self.samples.append(sample)
                log(
                    f"minute {sample['minute']:5.2f}: RSS {sample['rss_kib'] / 1024:7.1f} MiB "
                    f"(anon {sample['rss_anon_kib'] / 1024:.1f}, file {sample['rss_file_kib'] / 1024:.1f}, "
                    f"shmem {sample['rss_shmem_kib'] / 1024:.1f}; "
                    f"db {sample.get('db_kib', 0) / 1024:.1f} MiB, "
                    f"wal {sample.get('wal_kib', 0) / 1024:.1f} MiB), "
                    f"fds {sample['fds']:5d}, tasks {sample['tasks']:4d}, timers {sample['timers']:5d} "
                    f"(heap {sample['timer_heap']:5d}), "
                    f"connections {sample['connections']:5d} | sessions {self.counts.sessions}, "
                    f"check-ins {self.counts.checkins}, leaves {self.counts.leaves}, "
                    f"blips {self.counts.recoveries} (recovered {self.counts.recovered})"
                )
                next_sample += a.sample_seconds
                continue
            if now >= next_session:
                await self.next_session()
                next_session = now + a.session_seconds
            for index in self.rng.sample(range(n), min(n, a.checkins)):
                self.spawn(self.check_in(index))
            for index in self.rng.sample(range(n), min(n, a.leaves)):
                self.spawn(self.one_at_a_time(index, self.leave))
            for index in self.rng.sample(range(n), min(n, a.blips)):
                self.spawn(self.one_at_a_time(index, self.blip))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
        await asyncio.gather(*list(self.pending), return_exceptions=True)

    def verdict(self) -> tuple[bool, dict[str, Any]]:
        a = self.args
        later = [s for s in self.samples if s["minute"] >= a.warmup_minutes]
        if len(later) < 2:
            return False, {"error": "too few samples after the warm-up; run longer"}
        base = later[0]
        growth: dict[str, Any] = {}
        ok = True
        for key in METRICS:
            peak = max(s[key] for s in later[1:])
            ratio = (peak - base[key]) / base[key] if base[key] > 0 else 0.0
            growth[key] = {"baseline": base[key], "peak": peak, "growth": round(ratio, 4)}
            if ratio > a.growth:
                ok = False
        return ok, growth

    async def run(self) -> int:
        raise_nofile()
        srv = self.server()
        srv.start()
        self.port = srv.port
        self.base = f"http://{HOST}:{srv.port}"
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50))
        try:
            await wait_healthy(self.http, srv)
            await self.setup()
            await self.ramp()
            log(f"{sum(c is not None for c in self.conns)}/{self.args.n} subscribed; churning")
            await self.churn(srv)
        finally:
            for conn in self.conns:
                if conn is not None:
                    conn.abort()
            await self.http.close()
            srv.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        ok, growth = self.verdict()
        report = {
            "n": self.args.n,
            "minutes": self.args.minutes,
            "warmup_minutes": self.args.warmup_minutes,
            "max_growth": self.args.growth,
            "counts": self.counts.__dict__,
            "samples": self.samples,
            "growth": growth,
            "ok": ok,
        }
        print(json.dumps(report, indent=2))
        if self.args.json:
            with open(self.args.json, "w") as f:  # noqa: ASYNC230 - once, at the end
                json.dump(report, f, indent=2)
        if self.counts.recoveries and self.counts.recovered < 0.9 * self.counts.recoveries:
            log(f"only {self.counts.recovered} of {self.counts.recoveries} blips recovered")
            ok = False
        log("held: no resource grew by more than " + f"{self.args.growth:.0%}" if ok else f"FAILED: {growth}")
        return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--n", type=int, default=2000, help="clients (default 2000)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument(
        "--warmup-minutes", type=float, default=5.0, help="the baseline is the first sample after"
    )
    ap.add_argument("--sample-seconds", type=float, default=60.0)
    ap.add_argument("--growth", type=float, default=0.05, help="largest growth allowed after the warm-up")
    ap.add_argument("--session-seconds", type=float, default=20.0, help="a session ends and the next starts")
    ap.add_argument("--checkins", type=int, default=10, help="check-ins a second")
    ap.add_argument("--leaves", type=int, default=2, help="clients that close and reconnect, a second")
    ap.add_argument("--blips", type=int, default=2, help="clients that drop and recover, a second")
    ap.add_argument("--blip-seconds", type=float, default=1.0, help="how long a blip lasts")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--json", help="also write the report to this file")
    ap.add_argument(
        "--wrap",
        default="",
        help="run the server under this command, e.g. 'heaptrack -o /tmp/soak' (RSS then includes it)",
    )
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one more environment variable for the server (repeatable), e.g. PYTHONMALLOC=malloc",
    )
    ap.add_argument("--ours", default=os.path.join(ROOT, ".venv", "bin", "attendance-live"))
    args = ap.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    sys.exit(asyncio.run(Soak(args).run()))


if __name__ == "__main__":
    main()

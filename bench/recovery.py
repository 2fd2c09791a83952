#!/usr/bin/env python3
"""Connection state recovery at scale: N subscribers dropped and reconnected at once.

    .venv/bin/python bench/recovery.py --n 2000        # development
    .venv/bin/python bench/recovery.py                 # N=10,000

One of our servers (SQLite, the default settings: offsets on, a 120 s
window). Each round:

1. **recovery**: N students subscribe to one course (a gentle ramp) and keep
   the CONNECT reply's ``pid`` and the last offset, as socket.io-client does.
   All N are dropped at once (RST). While they are away the teacher starts
   and ends ``--sessions`` sessions (4 course events each). Then all N
   reconnect at once with ``auth: {token, pid, offset}``; a client counts as
   recovered when its CONNECT reply has its old pid and it has received every
   missed event, in order. Time: from the first reconnect to the last
   recovered client.
2. **plain storm**, the same N with fresh connections (no pid): connect,
   subscribe, receive the ``activeSessionsData`` snapshot; the time until the
   last has it (run.py's storm, measured the same way here).

Each prints p50/p99/completion, server CPU and the number of clients that got
there. Loopback only; bounded by ``--timeout`` per phase.
"""

# A benchmark driver: time limits are parameters.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import aiohttp  # noqa: E402
from loadgen import Conn, Worker, _dumps, _loads, mint_tokens, raise_nofile, ws_frame  # noqa: E402
from runner.reporting import pct  # noqa: E402
from runner.servers import HOST, ROOT, Server, free_port, log, wait_healthy  # noqa: E402

COURSE = "bench-recovery"
PREFIX = "bench-r"
TEACHER = "bench-teacher"
MISSED_PER_SESSION = 4  # courseSessionStarted, activeSessionsData, courseSessionEnded, activeSessionsData
PATH = b"/socket.io/?EIO=4&transport=websocket"


class RecoveringConn(Conn):
    """loadgen's connection, plus what socket.io-client keeps for recovery: the pid and the offset."""

    __slots__ = ("complete", "expect", "got", "offset", "old_pid", "pid")

    def __init__(self, w: Worker, index: int, port: int, auth: dict[str, Any], subscribe: bool) -> None:
        sub = (
            ws_frame(b'42["subscribeToCourse",' + _dumps({"course_id": COURSE}) + b"]") if subscribe else None
        )
        super().__init__(
            w, index, "sio", f"{HOST}:{port}".encode(), PATH, ws_frame(b"40" + _dumps(auth)), sub
        )
        self.pid: str | None = None
        self.old_pid: str | None = auth.get("pid")
        self.offset: str | None = auth.get("offset")
        self.expect = 0  # missed course events to come (recovery phase)
        self.got: list[int] = []
        # When the client is where it wants to be: subscribed with its snapshot, or recovered.
        self.complete: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def on_packet(self, p: bytes, now: float) -> None:
        if p.startswith(b"40") and self.state == self.SIO_CONNECT:
            self.pid = _loads(p[2:]).get("pid")
            if self.expect and self.pid != self.old_pid and not self.complete.done():
                self.complete.set_exception(ConnectionError("not recovered: a fresh pid"))
        elif p.startswith(b"42") and self.pid is not None and p.endswith(b'"]'):
            # A course event: its offset is the last argument (a decimal string).
            start = p.rfind(b',"')
            if start > 0 and p[start + 2 : -2].isdigit():
                self.offset = p[start + 2 : -2].decode()
                if self.expect:
                    self.got.append(int(self.offset))
                    if len(self.got) == self.expect and not self.complete.done():
                        self.complete.set_result(now)
        super().on_packet(p, now)
        ready = self.ready
        if not self.expect and ready.done() and not self.complete.done() and ready.exception() is None:
            self.complete.set_result(ready.result())

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.complete.done():
            self.complete.set_exception(ConnectionError("closed before it was done"))


class RecoveryBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.secret = secrets.token_urlsafe(36)
        self.tmp = tempfile.mkdtemp(prefix="attendance-recovery-")
        self.tokens = mint_tokens(self.secret, PREFIX, 0, args.n, 7200)
        self.teacher = mint_tokens(self.secret, TEACHER, 0, 1, 7200, role="teacher")[0]
        self.worker = Worker()
        self.results: list[dict[str, Any]] = []

    def server(self) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            ACCESS_TOKEN_SECRET=self.secret,
            DATABASE_URL=f"sqlite+aiosqlite:///{os.path.join(self.tmp, 'bench.db')}",
            LOG_LEVEL="warning",
            HTTP_RATE_LIMITS="false",  # every simulated student comes from one loopback address
        )
        cmd = [self.args.ours, "serve", "--host", HOST, "--port", str(port)]
        return Server("ours", cmd, env, port, os.path.join(self.tmp, "server.log"))

    async def api(self, srv: Server, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.teacher}"}
        async with self.http.request(
            method, f"http://{HOST}:{srv.port}{path}", json=body, headers=headers
        ) as r:
            data = await r.read()
            return r.status, json.loads(data) if data else None

    async def setup(self, srv: Server) -> None:
        st, body = await self.api(
            srv, "POST", "/api/courses", {"id": COURSE, "code": "REC-1", "title": "Recovery"}
        )
        if st not in (201, 409):
            raise RuntimeError(f"POST /api/courses -> {st} {body}")
        for start in range(0, self.args.n, 5000):
            items = [
                {"user_id": f"{PREFIX}{i}", "status": "approved", "name": f"Bench User {i}"}
                for i in range(start, min(self.args.n, start + 5000))
            ]
            st, body = await self.api(
                srv, "PUT", f"/api/courses/{COURSE}/enrollments", {"enrollments": items}
            )
            if st != 200:
                raise RuntimeError(f"PUT enrollments -> {st} {body}")

    async def open(
        self, srv: Server, auths: list[dict[str, Any]], *, subscribe: bool, expect: int, gentle: bool
    ) -> tuple[list[RecoveringConn], dict[str, Any]]:
        """Open one connection per auth; gentle: a ramp, else a storm (run.py's upgrade gate)."""
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(200 if gentle else self.args.backlog)
        conns = [RecoveringConn(self.worker, i, srv.port, auth, subscribe) for i, auth in enumerate(auths)]
        errors: dict[str, int] = {}
        for conn in conns:
            conn.expect = expect

        async def one(conn: RecoveringConn) -> None:
            try:
                async with sem:
                    await loop.create_connection(lambda: conn, HOST, srv.port)
                    if gentle:
                        await conn.complete
                        return
                    await conn.upgraded
                await conn.complete
            except Exception as exc:
                msg = (str(exc) or type(exc).__name__)[:120]
                errors[msg] = errors.get(msg, 0) + 1

        c0, t0 = srv.cpu(), time.monotonic()
        tasks = [asyncio.ensure_future(one(conn)) for conn in conns]
        _done, pending = await asyncio.wait(tasks, timeout=self.args.timeout)
        for task in pending:
            task.cancel()
        if pending:
            errors["timeout"] = len(pending)
        done = [c.complete.result() for c in conns if c.complete.done() and not c.complete.exception()]
        lat = [(t - t0) * 1000 for t in done]
        return conns, {
            "clients": len(lat),
            "completion_s": max(lat) / 1000 if lat else None,
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "server_cpu_s": srv.cpu() - c0,
            "errors": errors,
        }

    @staticmethod
    def drop(conns: list[RecoveringConn]) -> None:
        for conn in conns:
            conn.abort()

    async def recovery_round(self, srv: Server) -> dict[str, Any]:
        n, sessions = self.args.n, self.args.sessions
        conns, _ = await self.open(
            srv, [{"token": t} for t in self.tokens], subscribe=True, expect=0, gentle=True
        )
        away = [(c.pid, c.offset) for c in conns]
        if any(pid is None for pid, _ in away):
            raise RuntimeError(
                "the server gave no pid: is recovery on (EVENT_OFFSETS, RECOVERY_WINDOW_SECONDS)?"
            )
        self.drop(conns)
        await asyncio.sleep(1.0)  # the server has seen the disconnects (their window starts)
        for _ in range(sessions):
            st, body = await self.api(srv, "POST", f"/api/courses/{COURSE}/sessions", {"topic": "while away"})
            if st != 201:
                raise RuntimeError(f"start -> {st} {body}")
            st, body = await self.api(srv, "POST", f"/api/sessions/{body['id']}/end")
            if st != 200:
                raise RuntimeError(f"end -> {st} {body}")
        auths = [
            {"token": token, "pid": pid, **({"offset": offset} if offset else {})}
            for token, (pid, offset) in zip(self.tokens, away, strict=True)
        ]
        expect = MISSED_PER_SESSION * sessions
        conns, result = await self.open(srv, auths, subscribe=False, expect=expect, gentle=False)
        same_pid = sum(1 for c in conns if c.pid is not None and c.pid == c.old_pid)
        in_order = sum(1 for c in conns if len(c.got) == expect and c.got == sorted(set(c.got)))
        result.update(same_pid=same_pid, all_missed_in_order=in_order, of=n)
        self.drop(conns)
        await asyncio.sleep(2.0)
        return result

    async def storm_round(self, srv: Server) -> dict[str, Any]:
        conns, result = await self.open(
            srv, [{"token": t} for t in self.tokens], subscribe=True, expect=0, gentle=False
        )
        result["of"] = self.args.n
        self.drop(conns)
        await asyncio.sleep(2.0)
        return result

    async def run(self) -> None:
        raise_nofile()
        srv = self.server()
        srv.start()
        self.http = aiohttp.ClientSession()
        try:
            await wait_healthy(self.http, srv)
            await self.setup(srv)
            for rnd in range(1, self.args.rounds + 1):
                for name, phase in (("recovery", self.recovery_round), ("plain storm", self.storm_round)):
                    result = await phase(srv)
                    result.update(phase=name, round=rnd)
                    self.results.append(result)
                    log(
                        f"round {rnd} {name}: {result['clients']}/{self.args.n} in "
                        f"{result['completion_s'] or float('nan'):.2f} s (p50 {result['p50_ms']:.0f} ms, "
                        f"p99 {result['p99_ms']:.0f} ms), server CPU {result['server_cpu_s']:.2f} s"
                        + (
                            f", same pid {result['same_pid']}, every missed event in order "
                            f"{result['all_missed_in_order']}"
                            if name == "recovery"
                            else ""
                        )
                        + (f", errors {result['errors']}" if result["errors"] else "")
                    )
        finally:
            await self.http.close()
            srv.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        print(
            json.dumps({"n": self.args.n, "sessions": self.args.sessions, "results": self.results}, indent=2)
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--n", type=int, default=10_000, help="subscribers (default 10000)")
    ap.add_argument("--sessions", type=int, default=2, help="sessions started and ended while away")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backlog", type=int, default=500, help="connections in flight before their upgrade")
    ap.add_argument("--timeout", type=float, default=150.0, help="seconds before a phase gives up")
    ap.add_argument("--ours", default=os.path.join(ROOT, ".venv", "bin", "attendance-live"))
    args = ap.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(RecoveryBench(args).run())


if __name__ == "__main__":
    main()

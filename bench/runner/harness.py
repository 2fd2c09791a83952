"""What every scenario shares: the run's options, tokens, HTTP client and load generator.

A :class:`Harness` makes the servers (:meth:`Harness.make`), enrols the
courses (:meth:`Harness.setup`), starts sessions, warms a server up, closes a
phase's connections and waits for the server to go idle
(:meth:`Harness.teardown`), and keeps every sample under its scenario and
server kind for the report.
"""

# A benchmark driver: time limits are parameters, and blocking calls between measurements are fine.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import sys
import tempfile
import time
from typing import Any

import aiohttp
import jwt
from loadgen import LoadGen, mint_tokens

from .servers import HERE, HOST, PySpy, Server, free_port, log, monotonic

COURSE = "bench-course"
BURST_COURSE = "bench-burst"
STUDENT_PREFIX = "bench-u"
TEACHER_ID = "bench-teacher"
# Above this many connections the generator connects from several loopback source addresses:
# one address has only the ephemeral port range (about 28,000 ports) towards one server port.
SPREAD_SOURCES_ABOVE = 20000


class Harness:
    """One benchmark run's shared state: the options, tokens, the load generator, the samples."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.N: int = args.n
        self.secret = secrets.token_urlsafe(36)  # 48 characters
        self.tmp = tempfile.mkdtemp(prefix="attendance-bench-")
        self.db = os.path.join(self.tmp, "bench.db")
        self.results_dir = os.path.join(HERE, "results")
        self.logdir = os.path.join(self.results_dir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.teacher = jwt.encode(
            {"sub": TEACHER_ID, "name": "Bench Teacher", "role": "teacher", "exp": int(time.time()) + 7200},
            self.secret,
            algorithm="HS256",
        )
        self.burst_tokens = mint_tokens(self.secret, STUDENT_PREFIX, 0, args.burst, 7200)
        self.ours_ready = False
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.notes: list[str] = []
        self.setup_info: dict[str, Any] = {}
        self.lg = LoadGen(procs=args.procs)
        self.spread_sources: bool = args.spread_sources or args.n > SPREAD_SOURCES_ABOVE
        self.t_start = monotonic()
        self.token_state: str | None = None
        self.round_tag = "r0"
        self.background: list[dict[str, Any]] = []
        self.gen_total = 0.0
        self.http: aiohttp.ClientSession  # opened for the run, in an event loop (cli.run)

    # -- servers -----------------------------------------------------------------
    def make(
        self,
        kind: str,
        tag: str,
        redis_url: str | None = None,
        database_url: str | None = None,
        nofile: int | None = None,
    ) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env["ACCESS_TOKEN_SECRET"] = self.secret
        logpath = os.path.join(self.logdir, f"{kind}-{tag}.log")
        if kind == "ours":
            env.update(DATABASE_URL=database_url or f"sqlite+aiosqlite:///{self.db}", LOG_LEVEL="warning")
            env["HTTP_RATE_LIMITS"] = "false"  # every simulated student comes from one loopback address
            if redis_url:
                env["REDIS_URL"] = redis_url
            cmd = [self.args.ours, "serve", "--host", HOST, "--port", str(port)]
        elif kind == "peer":
            env["NODE_ENV"] = "production"
            cmd = [
                self.args.node,
                *self.args.node_args.split(),
                os.path.join(HERE, "peer", "server.js"),
                "--host",
                HOST,
                "--port",
                str(port),
            ]
        elif kind == "floor":
            cmd = [sys.executable, os.path.join(HERE, "floor.py"), "--host", HOST, "--port", str(port)]
        else:
            raise ValueError(kind)
        return Server(kind, cmd, env, port, logpath, nofile=nofile)

    async def api(
        self, srv: Server, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(
            method, f"http://{HOST}:{srv.port}{path}", json=body, headers=headers
        ) as r:
            data = await r.read()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, data.decode("utf-8", "replace")

    async def setup(self, srv: Server) -> None:
        """Course, N approved students, and the check-in course with `burst` students."""
        if srv.kind == "floor" or (srv.kind == "ours" and self.ours_ready):
            return
        t0 = monotonic()
        for cid, code in ((COURSE, "BENCH-1"), (BURST_COURSE, "BENCH-2")):
            st, body = await self.api(
                srv,
                "POST",
                "/api/courses",
                self.teacher,
                {"id": cid, "code": code, "title": f"Benchmark {code}"},
            )
            if st not in (201, 409):
                raise RuntimeError(f"{srv.kind}: POST /api/courses -> {st} {body}")
        sem = asyncio.Semaphore(self.args.enroll_concurrency)
        failures: list[str] = []

        async def enroll(cid: str, i: int) -> None:
            async with sem:
                st, body = await self.api(
                    srv,
                    "PUT",
                    f"/api/courses/{cid}/enrollments/{STUDENT_PREFIX}{i}",
                    self.teacher,
                    {"status": "approved", "name": f"Bench User {i}"},
                )
                if st not in (200, 201) and len(failures) < 5:
                    failures.append(f"{st} {body}")

        async def enroll_bulk(cid: str, count: int) -> None:
            # ours has a roster import (PUT .../enrollments, 5,000 a request); setup is not measured
            for start in range(0, count, 5000):
                items = [
                    {"user_id": f"{STUDENT_PREFIX}{i}", "status": "approved", "name": f"Bench User {i}"}
                    for i in range(start, min(count, start + 5000))
                ]
                st, body = await self.api(
                    srv, "PUT", f"/api/courses/{cid}/enrollments", self.teacher, {"enrollments": items}
                )
                if st != 200 and len(failures) < 5:
                    failures.append(f"{st} {body}")

        if srv.kind == "ours":
            await enroll_bulk(COURSE, self.N)
            await enroll_bulk(BURST_COURSE, self.args.burst)
        else:
            await asyncio.gather(
                *(enroll(COURSE, i) for i in range(self.N)),
                *(enroll(BURST_COURSE, i) for i in range(self.args.burst)),
            )
        if failures:
            raise RuntimeError(f"{srv.kind}: enrollment failed: {failures}")
        took = monotonic() - t0
        n = self.N + self.args.burst
        self.setup_info.setdefault(srv.kind, []).append({"enrollments": n, "seconds": round(took, 2)})
        log(f"  setup {srv.kind}: {n} enrollments in {took:.1f}s ({n / took:.0f}/s)")
        if srv.kind == "ours":
            self.ours_ready = True

    async def ensure_tokens(self, which: str) -> None:
        if self.token_state != which:
            await self.lg.tokens(self.secret, STUDENT_PREFIX, 0, self.N)
            self.token_state = which

    def add(self, scenario: str, kind: str, sample: dict[str, Any]) -> None:
        self.samples.setdefault(scenario, {}).setdefault(kind, []).append(sample)

    @staticmethod
    def self_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    async def gen_cpu(self) -> float:
        return float((await self.lg.stats())["cpu"]) + self.self_cpu()

    def profile(self, srv: Server, phase: str) -> PySpy:
        """py-spy over one phase of our server when --profile is given (else it does nothing)."""
        return PySpy(
            srv,
            os.path.join(self.results_dir, f"profile-ours-{phase}-{self.round_tag}"),
            enabled=bool(self.args.profile),
            py_spy=os.path.join(os.path.dirname(self.args.ours), "py-spy"),
        )

    # -- what every scenario does ------------------------------------------------
    async def start_session(self, srv: Server, course: str = COURSE) -> tuple[int, Any]:
        return await self.api(
            srv, "POST", f"/api/courses/{course}/sessions", self.teacher, {"topic": "bench"}
        )

    async def teardown(self, srv: Server) -> None:
        """Close every connection, then wait until the server is idle again.

        The next phase must not pay for this one's disconnects; how long the
        server needs to forget N connections is reported on its own.
        """
        c0, t0 = srv.cpu(), monotonic()
        closed = await self.lg.close()
        busy_until = monotonic()
        deadline = monotonic() + self.args.settle_timeout
        while monotonic() < deadline:
            a = srv.cpu()
            await asyncio.sleep(0.25)
            if srv.cpu() - a > 0.25 * 0.1:  # more than 10 % of a core: still busy
                busy_until = monotonic()
            elif monotonic() - busy_until > 0.5:
                break
        idle = monotonic() >= deadline
        self.add(
            "teardown",
            srv.kind,
            {
                "closed": closed,
                "seconds": busy_until - t0,
                "server_cpu_s": srv.cpu() - c0,
                "timed_out": idle,
            },
        )
        log(
            f"  teardown {srv.kind}: {closed} closed, server busy {busy_until - t0:.2f}s "
            f"(cpu {srv.cpu() - c0:.2f}s){' - still busy at the limit' if idle else ''}"
        )

    @staticmethod
    async def get(http: aiohttp.ClientSession, url: str) -> None:
        """GET ``url`` and read the answer (to open a keep-alive connection)."""
        async with http.get(url) as r:
            await r.read()

    async def warmup(self, srv: Server) -> None:
        """A few subscribers and a session start/end, so first-use costs are not measured."""
        await self.lg.tokens(self.secret, STUDENT_PREFIX, 0, min(20, self.N), name="warm")
        await self.lg.open(
            host=HOST, port=srv.port, mode="sio", course_id=COURSE, gate="all", concurrency=20, tokens="warm"
        )
        for _ in range(2):
            await self.lg.arm("courseSessionStarted")
            st, body = await self.start_session(srv)
            await self.lg.wait("courseSessionStarted", timeout=10, times=False)
            if st == 201:
                await self.api(srv, "POST", f"/api/sessions/{body['id']}/end", self.teacher)
        await asyncio.sleep(0.3)
        await self.lg.close()

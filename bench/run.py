#!/usr/bin/env python3
"""Run the attendance-live benchmarks: ours vs the Node.js Socket.IO peer vs the floor.

    .venv/bin/python bench/run.py --quick        # N=500, 2 rounds: a minute or two
    .venv/bin/python bench/run.py                # N=10,000, 3 rounds: under ten minutes

Scenarios (each prints p50/p99/max latency, throughput, server CPU seconds and
peak RSS, read from /proc for the server's process tree):

* fan-out  - N subscribers of one course; a session started over HTTP; latency
             from the request to courseSessionStarted at each subscriber.
* storm    - N clients connect, authenticate, subscribe and receive their
             activeSessionsData snapshot at once: time until all have it.
* memory   - server RSS per idle subscribed connection.
* check-in - 1,000 students check in over HTTP within one second (open loop,
             evenly spread; --dup of them send twice at the same instant);
             latency, and the exact final count. Ours runs the session in
             `code` mode: the generator reads the current code as the teacher
             (GET /api/sessions/{id}/check-in-code) and every student sends it
             (the peer has no codes: open mode). Durable SQLite.
* checkin-pg - the same burst on PostgreSQL (fsync and synchronous commits
             on) with two of our nodes over Redis, the students split between
             them (ours only; needs Debian's postgresql and redis-server).
* stalled  - the fan-out again, in the same round and with the same N
             subscribers, after 1 % of them (--stalled-fraction) stopped
             reading their socket (connected and subscribed, never reading);
             latency to the others, reported beside the same round's fan-out
             without them (target: p99 within 1.1x).
* nodes    - fan-out across two of our nodes over Redis (ours only).

Rounds alternate the order of the servers; each round starts every server
afresh. Results: a table on stdout and JSON in bench/results/. Loopback only;
every load is bounded in count and time.
"""

# A benchmark driver: time limits are parameters, and starting servers or py-spy
# with blocking calls between measurements is fine.
# ruff: noqa: ASYNC109, ASYNC220, ASYNC221

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import aiohttp  # noqa: E402
from loadgen import LoadGen, mint_tokens, raise_nofile  # noqa: E402

monotonic = time.monotonic
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
COURSE = "bench-course"
BURST_COURSE = "bench-burst"
STUDENT_PREFIX = "bench-u"
TEACHER_ID = "bench-teacher"
# Above this many connections the generator connects from several loopback source addresses:
# one address has only the ephemeral port range (about 28,000 ports) towards one server port.
SPREAD_SOURCES_ABOVE = 20000
# Connections one generator worker holds at most when --procs is not given.
CONNECTIONS_PER_WORKER = 20000
# File descriptors a server needs besides its N websockets (HTTP pool of the burst, database, logs).
FD_MARGIN = 1500


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK  # user nice system irq softirq steal


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, round(q / 100 * len(v) + 0.5) - 1))  # nearest rank
    return v[k]


def med(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and v == v]
    return statistics.median(vals) if vals else None


# ------------------------------------------------------------------ processes
class Server:
    """A server process and its tree, measured from /proc."""

    def __init__(self, kind: str, cmd: list[str], env: dict[str, str], port: int, logpath: str) -> None:
        self.kind, self.cmd, self.env, self.port, self.logpath = kind, cmd, env, port, logpath
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        def limits() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # no CAP_SYS_RESOURCE: soft up to hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            os.setsid()

        self.logf = open(self.logpath, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limits,
            cwd=HERE,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    def cpu(self) -> float:
        total = 0
        for p in self.tree():
            try:
                with open(f"/proc/{p}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def _status(self, key: str) -> int:
        total = 0
        for p in self.tree():
            try:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith(key):
                            total += int(line.split()[1])
            except OSError:
                continue
        return total  # KiB

    def rss_kib(self) -> int:
        return self._status("VmRSS:")

    def peak_kib(self) -> int:
        return self._status("VmHWM:")

    def reset_peak(self) -> None:
        for p in self.tree():
            try:
                with open(f"/proc/{p}/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current RSS
            except OSError:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()
        self.proc = None

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


async def wait_healthy(http: aiohttp.ClientSession, srv: Server, timeout: float = 60.0) -> None:
    deadline = monotonic() + timeout
    while monotonic() < deadline:
        if not srv.alive():
            raise RuntimeError(f"{srv.kind} exited at start:\n{srv.log_tail()}")
        try:
            async with http.get(f"http://{HOST}:{srv.port}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{srv.kind} not healthy within {timeout}s:\n{srv.log_tail()}")


class PySpy:
    """py-spy record of our server over one phase (--profile): raw collapsed stacks + a summary."""

    def __init__(self, bench: Bench, srv: Server, phase: str) -> None:
        self.on = bool(bench.args.profile) and srv.kind == "ours"
        self.srv, self.bench = srv, bench
        self.base = os.path.join(bench.results_dir, f"profile-ours-{phase}-{bench.round_tag}")
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> PySpy:
        if self.on:
            exe = os.path.join(os.path.dirname(self.bench.args.ours), "py-spy")
            self.proc = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(self.srv.pid),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--gil",
                    "--format",
                    "raw",
                    "-o",
                    self.base + ".txt",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            summarize_profile(self.base + ".txt", self.base + "-summary.txt")


def summarize_profile(raw: str, out: str, top: int = 30) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    try:
        with open(raw) as f:
            lines = f.read().splitlines()
    except OSError:
        return
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        c = int(n)
        total += c
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].split("/")[-1] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        self_c[frames[-1]] = self_c.get(frames[-1], 0) + c
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + c
    with open(out, "w") as f:
        f.write(f"{total} samples\n\nself:\n")
        for k, v in sorted(self_c.items(), key=lambda kv: -kv[1])[:top]:
            f.write(f"{100 * v / total:6.1f}%  {k}\n")
        f.write("\ninclusive:\n")
        for k, v in sorted(incl.items(), key=lambda kv: -kv[1])[: top * 2]:
            f.write(f"{100 * v / total:6.1f}%  {k}\n")


# ---------------------------------------------------------------------- bench
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.N: int = args.n
        self.secret = secrets.token_urlsafe(36)  # 48 characters
        self.tmp = tempfile.mkdtemp(prefix="attendance-bench-")
        self.db = os.path.join(self.tmp, "bench.db")
        self.results_dir = os.path.join(HERE, "results")
        self.logdir = os.path.join(self.results_dir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        import jwt

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
        self.lg_cpu = 0.0
        self.t_start = monotonic()
        self.deadline = self.t_start + args.budget
        self.token_state: str | None = None
        self.round_tag = "r0"
        self.background: list[dict[str, Any]] = []

    # -- servers -----------------------------------------------------------------
    def make(
        self, kind: str, tag: str, redis_url: str | None = None, database_url: str | None = None
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
        return Server(kind, cmd, env, port, logpath)

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

    # -- scenarios ---------------------------------------------------------------
    async def start_session(self, srv: Server, course: str = COURSE) -> tuple[int, Any]:
        return await self.api(
            srv, "POST", f"/api/courses/{course}/sessions", self.teacher, {"topic": "bench"}
        )

    async def fanout_and_memory(self, srv: Server, label: str = "") -> None:
        kind = srv.kind
        mode = "plain" if kind == "floor" else "sio"
        await asyncio.sleep(0.5)
        base_rss = srv.rss_kib()
        srv.reset_peak()
        g0 = await self.gen_cpu()
        c0 = srv.cpu()
        if mode == "sio":
            await self.ensure_tokens("main")
            res = await self.lg.open(
                host=HOST,
                port=srv.port,
                mode="sio",
                course_id=COURSE,
                gate="all",
                concurrency=self.args.ramp_concurrency,
                timeout=self.args.open_timeout,
                spread_sources=self.spread_sources,
            )
        else:
            res = await self.lg.open(
                host=HOST,
                port=srv.port,
                mode="plain",
                count=self.N,
                gate="all",
                concurrency=self.args.ramp_concurrency,
                timeout=self.args.open_timeout,
                spread_sources=self.spread_sources,
            )
        if res["errors"]:
            log(f"  {kind} ramp errors: {res['errors']}")
        await asyncio.sleep(1.0)
        rss = srv.rss_kib()
        opened = res["opened"]
        self.add(
            "memory",
            kind,
            {
                "kib_per_conn": (rss - base_rss) / opened if opened else None,
                "rss_base_mib": base_rss / 1024,
                "rss_mib": rss / 1024,
                "opened": opened,
                "ramp_s": res["t1"] - res["t0"],
                "ramp_cpu_s": srv.cpu() - c0,
                "peak_mib": srv.peak_kib() / 1024,
                "gen_cpu_s": await self.gen_cpu() - g0,
                "gen_rss_mib": (await self.lg.stats())["maxrss_kib_total"] / 1024,
                "errors": res["errors"],
            },
        )
        log(
            f"  memory {kind}: {(rss - base_rss) / max(opened, 1):.1f} KiB/conn ({opened} open, "
            f"ramp {res['t1'] - res['t0']:.1f}s)"
        )
        for k in range(self.args.triggers):
            await self.one_fanout(srv, "fanout", k)
        if "stalled" in self.args.scenarios:
            stalled, of = await self.lg.stall(self.args.stalled_fraction)
            log(f"  stalled {kind}: {stalled} of {of} subscribers stopped reading")
            for k in range(self.args.triggers):
                await self.one_fanout(srv, "stalled", k, extra={"stalled": stalled, "of": of})
        await self.teardown(srv)

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

    async def one_fanout(
        self,
        srv: Server,
        scenario: str,
        k: int,
        node_b: Server | None = None,
        timeout: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        kind = srv.kind
        target = await self.lg.arm("courseSessionStarted")
        servers = [srv] + ([node_b] if node_b else [])
        for s in servers:
            s.reset_peak()
        c0 = sum(s.cpu() for s in servers)
        g0 = await self.gen_cpu()
        m0 = machine_busy()
        t0 = monotonic()
        if kind == "floor":
            async with self.http.post(f"http://{HOST}:{srv.port}/trigger") as r:
                st = r.status
                await r.read()
            session_id = None
        else:
            st, body = await self.start_session(srv)
            session_id = body.get("id") if isinstance(body, dict) else None
        t_resp = monotonic()
        w = await self.lg.wait("courseSessionStarted", timeout=timeout or self.args.event_timeout)
        c1 = sum(s.cpu() for s in servers)
        g1 = await self.gen_cpu()
        m1 = machine_busy()
        lat = [(t - t0) * 1000 for t in w["times"]]
        sample = {
            "status": st,
            "received": w["received"],
            "target": target,
            "by_tag": w["by_tag"],
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat) if lat else None,
            "first_ms": min(lat) if lat else None,
            "http_ms": (t_resp - t0) * 1000,
            "msgs_per_s": (len(lat) / (max(lat) / 1000)) if lat else None,
            "server_cpu_s": c1 - c0,
            "peak_mib": sum(s.peak_kib() for s in servers) / 1024,
            "gen_cpu_s": g1 - g0,
            "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
            **(extra or {}),
        }
        self.add(scenario, kind, sample)
        log(
            f"  {scenario} {kind} #{k}: {w['received']}/{target} p50 {sample['p50_ms']:.1f} "
            f"p99 {sample['p99_ms']:.1f} max {sample['max_ms'] or float('nan'):.1f} ms "
            f"(http {sample['http_ms']:.1f} ms, server cpu {sample['server_cpu_s']:.2f}s, "
            f"gen cpu {sample['gen_cpu_s']:.2f}s)"
        )
        if session_id:
            await self.lg.arm("courseSessionEnded")
            _st2, _ = await self.api(srv, "POST", f"/api/sessions/{session_id}/end", self.teacher)
            await self.lg.wait("courseSessionEnded", timeout=timeout or self.args.event_timeout, times=False)
        await asyncio.sleep(0.5)

    async def storm(self, srv: Server) -> None:
        kind = srv.kind
        mode = "plain" if kind == "floor" else "sio"
        if mode == "sio":
            await self.ensure_tokens("main")
        await asyncio.sleep(0.3)
        srv.reset_peak()
        c0 = srv.cpu()
        g0 = await self.gen_cpu()
        m0 = machine_busy()
        kw: dict[str, Any] = dict(
            host=HOST,
            port=srv.port,
            gate="upgrade",
            concurrency=self.args.storm_backlog,
            timeout=self.args.storm_timeout,
            spread_sources=self.spread_sources,
        )
        if mode == "sio":
            res = await self.lg.open(mode="sio", course_id=COURSE, **kw)
        else:
            res = await self.lg.open(mode="plain", count=self.N, **kw)
        c1 = srv.cpu()
        g1 = await self.gen_cpu()
        m1 = machine_busy()
        lat = [(t - res["t0"]) * 1000 for t in res["times"]]
        completion = max(lat) / 1000 if lat else None
        sample = {
            "opened": res["opened"],
            "errors": res["errors"],
            "completion_s": completion,
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat) if lat else None,
            "conns_per_s": res["opened"] / completion if completion else None,
            "server_cpu_s": c1 - c0,
            "peak_mib": srv.peak_kib() / 1024,
            "gen_cpu_s": g1 - g0,
            "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
        }
        self.add("storm", kind, sample)
        log(
            f"  storm {kind}: {res['opened']}/{self.N} in {completion or float('nan'):.2f}s "
            f"(server cpu {sample['server_cpu_s']:.2f}s, gen cpu {sample['gen_cpu_s']:.2f}s) "
            f"errors={res['errors']}"
        )
        await self.teardown(srv)

    async def checkin_burst(
        self, srv: Server, scenario: str = "checkin", others: tuple[Server, ...] = ()
    ) -> None:
        """The burst, sent to ``srv`` (and ``others``, round robin); the subscriber watches ``srv``."""
        kind = srv.kind
        n = self.args.burst
        targets = [srv, *others]
        # one subscriber (a student of the course) watches activeSessionsData
        await self.lg.tokens(self.secret, STUDENT_PREFIX, 0, 1, name="one")
        await self.lg.open(
            host=HOST,
            port=srv.port,
            mode="sio",
            course_id=BURST_COURSE,
            gate="all",
            concurrency=1,
            tokens="one",
        )
        coded = kind == "ours"
        st, body = await self.api(
            srv,
            "POST",
            f"/api/courses/{BURST_COURSE}/sessions",
            self.teacher,
            {"topic": "bench", "check_in_mode": "code"} if coded else {"topic": "bench"},
        )
        if st != 201:
            raise RuntimeError(f"{kind}: start session -> {st} {body}")
        sid = body["id"]
        check_in_body = None
        if coded:  # what the projector shows; its grace (5 s) outlasts the one-second burst
            st, code = await self.api(srv, "GET", f"/api/sessions/{sid}/check-in-code", self.teacher)
            if st != 200:
                raise RuntimeError(f"{kind}: check-in code -> {st} {code}")
            check_in_body = {"code": code["code"]}
        await self.lg.arm("activeSessionsData", keep=True)
        conn = aiohttp.TCPConnector(limit=self.args.burst_pool, force_close=False)
        results: list[tuple[int, float]] = []
        async with aiohttp.ClientSession(connector=conn) as http:
            urls = [f"http://{HOST}:{t.port}" for t in targets]
            await asyncio.gather(
                *(self._get(http, urls[k % len(urls)] + "/healthz") for k in range(self.args.burst_pool))
            )
            await asyncio.sleep(0.2)

            async def one(i: int) -> None:
                t = monotonic()
                try:
                    async with http.post(
                        f"{urls[i % len(urls)]}/api/sessions/{sid}/check-in",
                        json=check_in_body,
                        headers={"Authorization": f"Bearer {self.burst_tokens[i]}"},
                    ) as r:
                        await r.read()
                        results.append((r.status, (monotonic() - t) * 1000))
                except asyncio.CancelledError:  # still unanswered at the time limit: a lower bound
                    results.append((0, (monotonic() - t) * 1000))
                    raise
                except aiohttp.ClientError as exc:
                    results.append((-1, (monotonic() - t) * 1000))
                    log(f"  check-in error: {exc}")

            # evenly spread over one second; the first `dup` students fire twice at the same instant
            plan = sorted([(i / n, i) for i in range(n)] + [(i / n, i) for i in range(min(self.args.dup, n))])
            for target in targets:
                target.reset_peak()
            c0 = sum(target.cpu() for target in targets)
            g0 = await self.gen_cpu()
            m0 = machine_busy()
            tasks = []
            t_start = monotonic()
            for at, i in plan:
                delay = t_start + at - monotonic()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(one(i)))
            _, pending = await asyncio.wait(tasks, timeout=self.args.event_timeout)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
                log(f"  check-in {kind}: {len(pending)} requests unanswered after {self.args.event_timeout}s")
            t_end = monotonic()
            c1 = sum(target.cpu() for target in targets)
            g1 = await self.gen_cpu()
            m1 = machine_busy()
        # exact count: the session as the teacher sees it
        st, sess = await self.api(srv, "GET", f"/api/sessions/{sid}", self.teacher)
        stats = sess.get("statistics", {}) if isinstance(sess, dict) else {}
        records = sess.get("records", []) if isinstance(sess, dict) else []
        ids = [r["user_id"] for r in records]
        marked = [r["user_id"] for r in records if r.get("status") in ("present", "late")]
        # the subscriber's last activeSessionsData must say studentCount == n
        last_count = None
        deadline = monotonic() + 5
        while monotonic() < deadline:
            last = await self.lg.last("activeSessionsData")
            if last:
                data = json.loads(last[2:])[1]
                sess_items = [a for a in data.get("activeSessions", []) if a.get("sessionId") == sid]
                last_count = sess_items[0]["studentCount"] if sess_items else None
                if last_count == n:
                    break
            await asyncio.sleep(0.1)
        await self.lg.wait("activeSessionsData", timeout=0.1, times=False)
        await self.api(srv, "POST", f"/api/sessions/{sid}/end", self.teacher)
        await self.lg.close()
        lat = [ms for _, ms in results]
        ok = [ms for s, ms in results if s == 200]
        statuses: dict[str, int] = {}
        for s, _ in results:
            key = {0: "unanswered", -1: "error"}.get(s, str(s))
            statuses[key] = statuses.get(key, 0) + 1
        exact = (
            stats.get("present") == n
            and len(marked) == n
            and len(set(marked)) == n
            and len(ids) == len(set(ids))
        )
        sample = {
            "requests": len(results),
            "statuses": statuses,
            "ok": len(ok),
            "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99),
            "max_ms": max(lat) if lat else None,
            "req_per_s": len(results) / (t_end - t_start),
            "burst_s": t_end - t_start,
            "present": stats.get("present"),
            "total": stats.get("total"),
            "records": len(ids),
            "unique_records": len(set(ids)),
            "last_studentCount": last_count,
            "exact": exact and last_count == n,
            "server_cpu_s": c1 - c0,
            "peak_mib": max(target.peak_kib() for target in targets) / 1024,
            "gen_cpu_s": g1 - g0,
            "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
        }
        self.add(scenario, kind, sample)
        log(
            f"  {scenario} {kind}: {len(results)} req, p50 {sample['p50_ms']:.1f} p99 {sample['p99_ms']:.1f} "
            f"max {sample['max_ms']:.1f} ms, present={stats.get('present')} records={len(ids)} "
            f"unique={len(set(ids))} last studentCount={last_count} exact={sample['exact']} "
            f"statuses={statuses}"
        )

    @staticmethod
    async def _get(http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(url) as r:
            await r.read()

    @contextlib.contextmanager
    def redis_server(self, name: str) -> Any:
        """A throw-away redis-server on loopback (yields its URL), stopped at the end."""
        rport = free_port()
        with open(os.path.join(self.logdir, f"{name}.log"), "ab") as rlog:
            redis = subprocess.Popen(
                ["redis-server", "--port", str(rport), "--bind", HOST, "--save", "", "--appendonly", "no"],
                stdout=rlog,
                stderr=subprocess.STDOUT,
            )
            try:
                yield f"redis://{HOST}:{rport}/0"
            finally:
                redis.terminate()
                redis.wait()

    async def many_nodes(self) -> None:
        if not shutil.which("redis-server"):
            self.notes.append(
                "many nodes: not available: redis-server is not installed (apt-get install redis-server)"
            )
            return
        with self.redis_server("redis") as url:
            await self._many_nodes(url)

    async def _many_nodes(self, url: str) -> None:
        a = self.make("ours", "nodeA", url)
        b = self.make("ours", "nodeB", url)
        try:
            await asyncio.sleep(0.3)
            a.start()
            await wait_healthy(self.http, a)
            await self.setup(a)
            b.start()
            await wait_healthy(self.http, b)
            async with self.http.get(f"http://{HOST}:{a.port}/readyz") as r:
                ready = (r.status, await r.text())
            # probe with a few subscribers per node first: no point ramping N if events do not cross
            await self.lg.tokens(self.secret, STUDENT_PREFIX, 0, 10, name="pA")
            await self.lg.tokens(self.secret, STUDENT_PREFIX, 10, 10, name="pB")
            for srv, name in ((a, "A"), (b, "B")):
                await self.lg.open(
                    host=HOST,
                    port=srv.port,
                    mode="sio",
                    course_id=COURSE,
                    gate="all",
                    concurrency=10,
                    tokens="p" + name,
                    tag=name,
                )
            await self.lg.arm("courseSessionStarted")
            st, body = await self.start_session(a)
            w = await self.lg.wait("courseSessionStarted", timeout=5.0, times=False)
            if st == 201:
                await self.api(a, "POST", f"/api/sessions/{body['id']}/end", self.teacher)
            await self.lg.close()
            if w["by_tag"].get("B", 0) == 0:
                self.notes.append(
                    "many nodes: not available: subscribers on node B got no courseSessionStarted "
                    "for a session started on node A within 5 s (REDIS_URL set; node A /readyz -> "
                    f"{ready[0]} {ready[1][:160]}); the server does not fan out across nodes yet"
                )
                return
            await asyncio.sleep(0.5)
            half = self.N // 2
            await self.lg.tokens(self.secret, STUDENT_PREFIX, 0, half, name="A")
            await self.lg.tokens(self.secret, STUDENT_PREFIX, half, self.N - half, name="B")
            t_ramp = monotonic()
            res = await self.lg.open(  # both nodes in one interleaved ramp: they use both cores
                host=HOST,
                port=a.port,
                mode="sio",
                course_id=COURSE,
                gate="all",
                concurrency=self.args.ramp_concurrency,
                timeout=self.args.open_timeout,
                tokens="A",
                tag="A",
                more=[{"port": b.port, "tokens": "B", "tag": "B"}],
                spread_sources=self.spread_sources,
            )
            log(f"  nodes: {res['opened']}/{self.N} subscribed over two nodes in {monotonic() - t_ramp:.1f}s")
            if res["errors"]:
                log(f"  nodes: ramp errors: {res['errors']}")
            for k in range(self.args.node_triggers):
                await self.one_fanout(a, "nodes", k, node_b=b, timeout=min(self.args.event_timeout, 10.0))
                last = self.samples["nodes"]["ours"][-1]
                if last["by_tag"].get("B", 0) == 0:
                    self.samples["nodes"]["ours"].pop()
                    self.notes.append(
                        "many nodes: not available: subscribers on node B got no courseSessionStarted "
                        f"for a session started on node A within {min(self.args.event_timeout, 10.0)}s "
                        f"(REDIS_URL set, /readyz -> {ready[0]} {ready[1][:200]})"
                    )
                    break
        except Exception as exc:
            self.notes.append(f"many nodes: not available: {exc or type(exc).__name__}".splitlines()[0][:300])
        finally:
            await self.lg.close()
            a.stop()
            b.stop()

    async def checkin_postgres(self) -> None:
        """The check-in burst on a durable PostgreSQL with two of our nodes over Redis."""
        if not shutil.which("redis-server"):
            self.notes.append("checkin-pg: not available: apt-get install redis-server")
            return
        sys.path.insert(0, ROOT)
        from tests.infra.postgres import PostgresServer  # the tests' throw-away server, made durable

        try:
            pg = PostgresServer(durable=True)
            pg.start()
        except Exception as exc:
            self.notes.append(f"checkin-pg: not available: {exc}".splitlines()[0][:300])
            return
        try:
            with self.redis_server("redis-pg") as url:
                await self._checkin_postgres(url, pg.create_database("bench"))  # its DSN
        finally:
            pg.close()

    async def _checkin_postgres(self, url: str, database_url: str) -> None:
        a = self.make("ours", "pgA", url, database_url)
        b = self.make("ours", "pgB", url, database_url)
        try:
            migrated = subprocess.run(
                [self.args.ours, "migrate"], env=a.env, capture_output=True, text=True, check=False
            )
            if migrated.returncode != 0:
                raise RuntimeError(f"migrate failed: {migrated.stderr[-300:]}")
            a.start()
            b.start()
            await wait_healthy(self.http, a)
            await wait_healthy(self.http, b)
            ready, self.ours_ready = self.ours_ready, False  # a fresh database: enrol again
            try:
                await self.setup(a)
            finally:
                self.ours_ready = ready
            await self.warmup(a)
            await self.warmup(b)  # both nodes' connection pools filled before the measured burst
            for _ in range(self.args.rounds):
                async with PySpy(self, a, "checkin-pg"):
                    await self.checkin_burst(a, "checkin-pg", others=(b,))
        except Exception as exc:
            self.notes.append(f"checkin-pg: failed: {exc or type(exc).__name__}".splitlines()[0][:300])
        finally:
            with contextlib.suppress(Exception):
                await self.lg.close()
            a.stop()
            b.stop()

    # -- the run -----------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        raise_nofile()
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        await self.lg.start()
        kinds = [k for k in self.args.servers.split(",") if k]
        try:
            for rnd in range(self.args.rounds):
                if rnd > 0 and monotonic() > self.t_start + self.args.budget * 0.7:
                    self.notes.append(f"stopped after {rnd} rounds: time budget ({self.args.budget}s)")
                    break
                order = kinds if rnd % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    log(f"round {rnd + 1}/{self.args.rounds}: {kind}")
                    self.round_tag = f"r{rnd + 1}"
                    b0, w0 = machine_busy(), monotonic()
                    await asyncio.sleep(1.0)
                    background = (machine_busy() - b0) / (monotonic() - w0)
                    self.background.append(
                        {"round": rnd + 1, "before": kind, "cores_busy": round(background, 2)}
                    )
                    if background > 0.15:
                        log(f"  warning: {background:.2f} cores busy before the round (other processes)")
                        self.notes.append(
                            f"background load: {background:.2f} of {os.cpu_count()} cores busy "
                            f"with other processes just before {kind} round {rnd + 1}"
                        )
                    srv = self.make(kind, self.round_tag)
                    srv.start()
                    try:
                        await wait_healthy(self.http, srv)
                        await self.setup(srv)
                        if kind != "floor":
                            await self.warmup(srv)
                        gc.collect()
                        if self.args.scenarios & {"fanout", "memory", "stalled"}:
                            async with PySpy(self, srv, "fanout"):
                                await self.fanout_and_memory(srv)
                        if "storm" in self.args.scenarios:
                            async with PySpy(self, srv, "storm"):
                                await self.storm(srv)
                        if "checkin" in self.args.scenarios and kind != "floor":
                            async with PySpy(self, srv, "checkin"):
                                await self.checkin_burst(srv)
                    except Exception as exc:
                        log(f"  {kind} round {rnd + 1} FAILED: {exc}")
                        msg = (str(exc) or type(exc).__name__).splitlines()[0][:300]
                        self.notes.append(f"{kind} round {rnd + 1} failed: {msg}")
                        with contextlib.suppress(Exception):
                            await self.lg.close()
                    finally:
                        srv.stop()
            if "nodes" in self.args.scenarios and "ours" in kinds:
                log("many nodes: ours x2 over Redis")
                await self.many_nodes()
            if "checkin-pg" in self.args.scenarios and "ours" in kinds:
                log("check-in on PostgreSQL: ours x2 over Redis")
                await self.checkin_postgres()
            self.gen_total = await self.gen_cpu()
        finally:
            await self.lg.stop()
            await self.http.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.report()

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

    # -- report ------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(
                [
                    os.path.relpath(sys.executable, ROOT)
                    if sys.executable.startswith(ROOT)
                    else sys.executable,
                    os.path.relpath(sys.argv[0], ROOT),
                    *sys.argv[1:],
                ]
            ),
            "machine": machine_facts(self.args.node),
            "config": {k: v for k, v in vars(self.args).items()},
            "setup": self.setup_info,
            "notes": self.notes,
            "background": self.background,
            "generator_cpu_s_total": self.gen_total,
            "elapsed_s": monotonic() - self.t_start,
            "samples": self.samples,
        }


METRICS: list[tuple[str, str, str, str]] = [
    # scenario, key, label, better
    ("fanout", "first_ms", "fan-out first arrival (ms)", "low"),
    ("fanout", "p50_ms", "fan-out p50 (ms)", "low"),
    ("fanout", "p99_ms", "fan-out p99 (ms)", "low"),
    ("fanout", "max_ms", "fan-out max (ms)", "low"),
    ("fanout", "http_ms", "fan-out HTTP response (ms)", "low"),
    ("fanout", "msgs_per_s", "fan-out throughput (msg/s)", "high"),
    ("fanout", "server_cpu_s", "fan-out server CPU (s)", "low"),
    ("fanout", "peak_mib", "fan-out server peak RSS (MiB)", "low"),
    ("fanout", "gen_cpu_s", "fan-out generator CPU (s)", "low"),
    ("fanout", "other_cpu_s", "fan-out other CPU: kernel + other procs (s)", "low"),
    ("stalled", "p50_ms", "fan-out, 1 % stalled: p50 (ms)", "low"),
    ("stalled", "p99_ms", "fan-out, 1 % stalled: p99 (ms)", "low"),
    ("stalled", "max_ms", "fan-out, 1 % stalled: max (ms)", "low"),
    ("stalled", "server_cpu_s", "fan-out, 1 % stalled: server CPU (s)", "low"),
    ("storm", "opened", "storm clients with snapshot (of N)", "high"),
    ("storm", "completion_s", "storm completion (s)", "low"),
    ("storm", "p50_ms", "storm p50 (ms)", "low"),
    ("storm", "p99_ms", "storm p99 (ms)", "low"),
    ("storm", "conns_per_s", "storm throughput (conn/s)", "high"),
    ("storm", "server_cpu_s", "storm server CPU (s)", "low"),
    ("storm", "peak_mib", "storm server peak RSS (MiB)", "low"),
    ("storm", "gen_cpu_s", "storm generator CPU (s)", "low"),
    ("storm", "other_cpu_s", "storm other CPU: kernel + other procs (s)", "low"),
    ("memory", "kib_per_conn", "memory per idle subscriber (KiB)", "low"),
    ("memory", "rss_base_mib", "RSS before connections (MiB)", "low"),
    ("memory", "rss_mib", "RSS with N subscribed (MiB)", "low"),
    ("memory", "gen_rss_mib", "load generator peak RSS since start, all workers (MiB)", "low"),
    ("memory", "ramp_s", "gentle ramp of N (s)", "low"),
    ("memory", "ramp_cpu_s", "gentle ramp server CPU (s)", "low"),
    ("teardown", "seconds", "teardown of N: server busy (s)", "low"),
    ("teardown", "server_cpu_s", "teardown of N: server CPU (s)", "low"),
    ("checkin", "p50_ms", "check-in p50 (ms)", "low"),
    ("checkin", "p99_ms", "check-in p99 (ms)", "low"),
    ("checkin", "max_ms", "check-in max (ms)", "low"),
    ("checkin", "req_per_s", "check-in throughput (req/s)", "high"),
    ("checkin", "server_cpu_s", "check-in server CPU (s)", "low"),
    ("checkin", "peak_mib", "check-in server peak RSS (MiB)", "low"),
    ("checkin", "gen_cpu_s", "check-in generator CPU (s)", "low"),
    ("checkin", "other_cpu_s", "check-in other CPU: kernel + other procs (s)", "low"),
    ("checkin-pg", "p50_ms", "check-in on PostgreSQL, 2 nodes: p50 (ms)", "low"),
    ("checkin-pg", "p99_ms", "check-in on PostgreSQL, 2 nodes: p99 (ms)", "low"),
    ("checkin-pg", "max_ms", "check-in on PostgreSQL, 2 nodes: max (ms)", "low"),
    ("checkin-pg", "server_cpu_s", "check-in on PostgreSQL, 2 nodes: servers' CPU (s)", "low"),
]


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    rows = []
    by_scenario = result["samples"]
    stalled_pct = f"{100 * float(result['config'].get('stalled_fraction', 0.01)):g} %"
    for scen, key, label, _better in METRICS:
        label = label.replace("1 % stalled", f"{stalled_pct} stalled")
        vals = {
            k: med([s.get(key) for s in by_scenario.get(scen, {}).get(k, [])])
            for k in ("ours", "peer", "floor")
        }
        if all(v is None for v in vals.values()):
            continue
        o, p, f = vals["ours"], vals["peer"], vals["floor"]
        if key == "other_cpu_s":  # background, not a property of the server: no ratio
            p_ratio = f_ratio = None
        else:
            p_ratio = (o / p) if o is not None and p else None
            f_ratio = (o / f) if o is not None and f else None
        rows.append(
            {
                "scenario": scen,
                "metric": key,
                "label": label,
                "ours": o,
                "peer": p,
                "floor": f,
                "ours/peer": p_ratio,
                "ours/floor": f_ratio,
                "n": {k: len(by_scenario.get(scen, {}).get(k, [])) for k in ("ours", "peer", "floor")},
            }
        )
    if by_scenario.get("stalled"):
        # Each server against itself in the same rounds: p99 with the stalled subscribers over p99
        # without them (the target is <= 1.1); the ratio columns stay empty.
        ratios: dict[str, float | None] = {}
        for k in ("ours", "peer", "floor"):
            with_stalled = med([s.get("p99_ms") for s in by_scenario["stalled"].get(k, [])])
            without = med([s.get("p99_ms") for s in by_scenario.get("fanout", {}).get(k, [])])
            ratios[k] = with_stalled / without if with_stalled is not None and without else None
        rows.append(
            {
                "scenario": "stalled",
                "metric": "p99_ratio",
                "label": f"fan-out p99, {stalled_pct} stalled / none stalled [ratio, same run]",
                **ratios,
                "ours/peer": None,
                "ours/floor": None,
                "n": {k: len(by_scenario["stalled"].get(k, [])) for k in ("ours", "peer", "floor")},
            }
        )
    nodes = by_scenario.get("nodes", {}).get("ours", [])
    if nodes:
        for key, label in (
            ("p50_ms", "2 nodes fan-out p50 (ms)"),
            ("p99_ms", "2 nodes fan-out p99 (ms)"),
            ("max_ms", "2 nodes fan-out max (ms)"),
            ("server_cpu_s", "2 nodes server CPU (s)"),
        ):
            v = med([s[key] for s in nodes])
            one = med([s[key] for s in by_scenario.get("fanout", {}).get("ours", [])])
            rows.append(
                {
                    "scenario": "nodes",
                    "metric": key,
                    "label": label + " [ratio: 2 nodes / 1 node]",
                    "ours": v,
                    "peer": None,
                    "floor": None,
                    "ours/peer": (v / one) if v and one else None,
                    "ours/floor": None,
                    "n": {"ours": len(nodes)},
                }
            )
    checks = []
    for scen in ("checkin", "checkin-pg"):
        for k, samples in by_scenario.get(scen, {}).items():
            for s in samples:
                checks.append(
                    f"{scen} {k}: present={s['present']} records={s['records']} unique={s['unique_records']} "
                    f"last studentCount={s['last_studentCount']} exact={s['exact']} "
                    f"statuses={s['statuses']}"
                )
    errors = []
    for scen in ("memory", "storm"):
        for k, samples in by_scenario.get(scen, {}).items():
            for s in samples:
                if s.get("errors"):
                    errors.append(f"{scen} {k}: {s['errors']}")
    for scen in ("fanout", "stalled"):
        for k, samples in by_scenario.get(scen, {}).items():
            for s in samples:
                if s["received"] != s["target"]:
                    errors.append(f"{scen} {k}: received {s['received']}/{s['target']}")
    return {"rows": rows, "checkin_checks": checks, "errors": errors}


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    return str(v)


def render(result: dict[str, Any], summary: dict[str, Any]) -> str:
    m = result["machine"]
    cfg = result["config"]
    out = [
        f"# attendance-live benchmark - {result['when']}",
        "",
        f"command: {result['command']}",
        f"machine: {m['cpu']} x{m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"Python {m['python']}, Node {m['node']}",
        f"versions: {m['versions']}",
        f"N={cfg['n']} subscribers, rounds={cfg['rounds']} (servers alternate order), fan-out triggers/round="
        f"{cfg['triggers']}, check-in burst={cfg['burst']} (+{cfg['dup']} racing duplicates) over 1 s, "
        f"generator processes={cfg['procs']}, stalled subscribers={100 * cfg['stalled_fraction']:g} %",
        f"elapsed {result['elapsed_s']:.0f}s; load generator CPU total "
        f"{result['generator_cpu_s_total']:.1f}s (workers + driver)",
        "",
        "medians over rounds (fan-out: over all triggers); ratios < 1 favour ours for times/CPU/memory, "
        "> 1 for throughput",
        "",
    ]
    head = ["metric", "ours", "peer", "floor", "ours/peer", "ours/floor"]
    rows = [
        [
            r["label"],
            fmt(r["ours"]),
            fmt(r["peer"]),
            fmt(r["floor"]),
            fmt(r["ours/peer"]),
            fmt(r["ours/floor"]),
        ]
        for r in summary["rows"]
    ]
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))
            + " |"
        )

    out.append(line(head))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(r) for r in rows)
    out.append("")
    if summary["checkin_checks"]:
        out.append(
            "check-in exactness (GET /api/sessions/{id} as the teacher, and the subscriber's last "
            "activeSessionsData):"
        )
        out.extend("  " + c for c in summary["checkin_checks"])
    if result["setup"]:
        out.append(
            "setup (HTTP enrollments): "
            + "; ".join(
                f"{k}: " + ", ".join(f"{s['enrollments']} in {s['seconds']}s" for s in v)
                for k, v in result["setup"].items()
            )
        )
    for e in summary["errors"]:
        out.append("error: " + e)
    for n in result["notes"]:
        out.append("note: " + n)
    return "\n".join(out)


def machine_facts(node: str) -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    try:
        node_v = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        node_v = "missing"
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in (
        "attendance-live",
        "python-socketio",
        "python-engineio",
        "uvicorn",
        "websockets",
        "uvloop",
        "fastapi",
        "SQLAlchemy",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    try:
        with open(os.path.join(HERE, "peer", "package-lock.json")) as f:
            lock = json.load(f)
        for name in ("socket.io", "engine.io", "ws", "jsonwebtoken"):
            versions[name] = lock["packages"][f"node_modules/{name}"]["version"]
    except (OSError, KeyError, ValueError):
        pass
    try:
        commit = (
            subprocess.run(
                ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            or "uncommitted"
        )
    except OSError:
        commit = "?"
    versions["attendance-live commit"] = commit
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node_v,
        "versions": versions,
    }


def plan_scale(args: argparse.Namespace) -> None:
    """Generator processes, time limits and file-descriptor checks for N (up to 50,000 and more).

    Every server holds N sockets in one process, so its open-file limit must exceed N; it can
    be raised only up to the hard limit (``ulimit -Hn``), which needs CAP_SYS_RESOURCE to raise.
    Refuse at once, saying how, rather than fail half-way through a ramp.
    """
    n = args.n
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 30
    if args.procs is None:
        args.procs = max(1, -(-n // min(CONNECTIONS_PER_WORKER, hard - FD_MARGIN)))
    per_worker = -(-n // args.procs)
    needs = {
        "one server process": n + args.burst_pool + FD_MARGIN,
        f"one of {args.procs} load generator processes": per_worker + FD_MARGIN,
    }
    for who, need in needs.items():
        if need > hard:
            raise SystemExit(
                f"N={n:,} needs {need:,} open files in {who}, but the hard limit here is {hard:,} "
                "(ulimit -Hn). Raise it for the shell that runs the benchmark (as root with "
                f"CAP_SYS_RESOURCE: `prlimit --nofile={2 * need}:{2 * need} --pid $$`; under systemd "
                f"LimitNOFILE={2 * need}; in a container --ulimit nofile={2 * need}:{2 * need})"
                + (", use more generator processes (--procs)" if "generator" in who else "")
                + ", or run a smaller -n."
            )
    # A gentle ramp and a storm run at several hundred connections a second: scale their limits.
    args.open_timeout = args.open_timeout or max(300.0, n / 50)
    args.storm_timeout = args.storm_timeout or max(150.0, n / 100)
    args.settle_timeout = args.settle_timeout or max(60.0, n / 500)
    args.budget = args.budget or max(540.0, n * 0.054)
    if n > SPREAD_SOURCES_ABOVE or args.spread_sources:
        log(
            f"N={n:,}: {args.procs} generator processes, connections spread over loopback source "
            f"addresses 127.64.0.1 and up; limits: ramp {args.open_timeout:.0f}s, storm "
            f"{args.storm_timeout:.0f}s, budget {args.budget:.0f}s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N=500, 2 rounds, 2 triggers: for development")
    ap.add_argument("-n", type=int, help="subscribers (default 10000; --quick 500)")
    ap.add_argument("--rounds", type=int, help="rounds per server (default 3; --quick 2)")
    ap.add_argument("--triggers", type=int, help="fan-out triggers per round (default 3; --quick 2)")
    ap.add_argument("--servers", default="ours,peer,floor", help="comma list of ours,peer,floor")
    ap.add_argument(
        "--scenarios",
        default="fanout,memory,stalled,storm,checkin,nodes,checkin-pg",
        help="comma list of fanout,memory,stalled,storm,checkin,nodes,checkin-pg",
    )
    ap.add_argument(
        "--stalled-fraction",
        type=float,
        default=0.01,
        help="share of the fan-out's subscribers that stop reading in the stalled scenario",
    )
    ap.add_argument("--burst", type=int, default=1000, help="students in the check-in burst")
    ap.add_argument("--dup", type=int, default=100, help="students of the burst that check in twice at once")
    ap.add_argument("--burst-pool", type=int, default=100, help="HTTP keep-alive connections for the burst")
    ap.add_argument(
        "--procs",
        type=int,
        help=f"load generator worker processes (default: one per {CONNECTIONS_PER_WORKER:,} connections)",
    )
    ap.add_argument(
        "--ramp-concurrency", type=int, default=200, help="connections in flight in a gentle ramp"
    )
    ap.add_argument(
        "--storm-backlog",
        type=int,
        default=500,
        help="connections in flight before their websocket upgrade in the storm (keep below the "
        "smallest listen backlog: Node's 511)",
    )
    ap.add_argument(
        "--spread-sources",
        action="store_true",
        help=f"connect from several loopback source addresses (always above N={SPREAD_SOURCES_ABOVE:,})",
    )
    ap.add_argument("--enroll-concurrency", type=int, default=16)
    ap.add_argument("--node-triggers", type=int, default=3)
    ap.add_argument(
        "--settle-timeout",
        type=float,
        help="seconds to wait for a server to go idle after closing connections (default 60, or N/500)",
    )
    ap.add_argument("--event-timeout", type=float, default=30.0)
    ap.add_argument(
        "--open-timeout", type=float, help="seconds for a gentle ramp of N (default 300, or N/50)"
    )
    ap.add_argument(
        "--storm-timeout", type=float, help="seconds before a storm gives up (default 150, or N/100)"
    )
    ap.add_argument(
        "--budget",
        type=float,
        help="seconds; no new round starts past 70%% of it (default 540, or 0.054 s per subscriber)",
    )
    ap.add_argument("--ours", default=os.path.join(ROOT, ".venv", "bin", "attendance-live"))
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-args", default="", help="extra node options for the peer, e.g. '--cpu-prof'")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record our server per phase into bench/results/profile-ours-*.txt (+ -summary.txt)",
    )
    ap.add_argument("--out", help="JSON path (default bench/results/bench-<time>.json)")
    args = ap.parse_args()
    args.n = args.n or (500 if args.quick else 10000)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.triggers = args.triggers or (2 if args.quick else 3)
    args.scenarios = set(args.scenarios.split(","))
    if not 0 < args.stalled_fraction <= 0.5:
        ap.error(f"--stalled-fraction must be above 0 and at most 0.5, not {args.stalled_fraction}")
    plan_scale(args)
    if args.quick:
        args.node_triggers = min(args.node_triggers, 2)
    if not os.path.exists(os.path.join(HERE, "peer", "node_modules", "socket.io")) and "peer" in args.servers:
        log("installing the peer's pinned packages: npm ci in bench/peer")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=os.path.join(HERE, "peer"), check=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(Bench(args).run())
    result["config"]["scenarios"] = sorted(args.scenarios)
    summary = summarize(result)
    result["summary"] = summary
    text = render(result, summary)
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(HERE, "results", f"bench-{'quick' if args.quick else 'full'}-{stamp}.json")
    result["table"] = text
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(out[:-5] + ".md", "w") as f:
        f.write(text + "\n")
    log(f"results: {os.path.relpath(out, ROOT)} (+ .md)")


if __name__ == "__main__":
    main()

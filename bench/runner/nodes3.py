"""Three nodes (issue 22): N connections over three of our nodes, one database, one Redis.

Ours only (the Node.js peer is one node with its state in memory). Each
connection is its own enrolled student, as everywhere in the bench; the nodes
share one database (PostgreSQL by default, as an operator runs several nodes;
``--nodes3-db sqlite`` for one SQLite file) and one ``redis-server``
(``REDIS_URL``). Every node process is started with an open-file limit of
``--node-nofile`` (20,000), and its open files are sampled throughout.

* ramp: N/3 subscribers on each node, one interleaved gentle ramp.
* fan-out: ``--node-triggers`` sessions started through node A; latency from
  the request to ``courseSessionStarted`` at every client of every node (p50,
  p99, max, first arrival). Every client served: each must receive the start
  and the end of every session exactly once; ``misses`` counts the clients
  (of the ramp's N) without the event, ``duplicates`` the second copies.
* storm: all N connect at once, N/3 to each node: completion is the time
  until the last has its snapshot; then one more session start through node A
  must reach every stormed client, once.

Samples go under the scenarios ``nodes3`` (each fan-out), ``nodes3-ramp`` and
``nodes3-storm``; each carries every node's peak open files and its limit.
"""

# A benchmark driver: time limits are parameters, and blocking calls between measurements are fine.
# ruff: noqa: ASYNC221

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from .harness import COURSE, STUDENT_PREFIX, Harness
from .reporting import pct
from .servers import (
    HOST,
    REDIS_PIDS,
    ROOT,
    Server,
    log,
    machine_busy,
    machine_parts,
    monotonic,
    redis_server,
    tree_cpu,
    wait_healthy,
)

NODES = ("A", "B", "C")
#: The open-file limit of every node process (issue 22: "each node under the 20,000 open-file limit").
NODE_NOFILE = 20000


class FdWatch:
    """Samples the open files of each node every ``every`` seconds, and of the load generator's
    workers at each :meth:`reset` and around each fan-out (they open no socket in between); keeps
    each one's peak since the last :meth:`reset`. Listing /proc/PID/fd of a process with 17,000
    descriptors takes about 27 ms here, so the nodes are listed in a thread and not too often."""

    def __init__(self, nodes: dict[str, Server], generator_pids: list[int], every: float = 2.0) -> None:
        self.nodes, self.generator_pids, self.every = nodes, generator_pids, every
        self.peak: dict[str, int] = {}
        self.task: asyncio.Task[None] | None = None
        self.paused = False

    def sample(self, generator: bool = True) -> None:
        counts = {name: srv.open_files() for name, srv in self.nodes.items()}
        for i, pid in enumerate(self.generator_pids if generator else ()):
            with contextlib.suppress(OSError):
                counts[f"gen{i}"] = len(os.listdir(f"/proc/{pid}/fd"))
        for k, v in counts.items():
            self.peak[k] = max(self.peak.get(k, 0), v)

    async def _run(self) -> None:
        while True:
            if not self.paused:
                await asyncio.to_thread(self.sample, False)
            await asyncio.sleep(self.every)

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """No sampling while the driver times a fan-out (listing 17,000 descriptors of six processes
        blocks its event loop for tens of milliseconds); one sample before and after instead."""
        self.sample()
        self.paused = True
        try:
            yield
        finally:
            self.paused = False
            self.sample()

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def reset(self) -> dict[str, int]:
        """The peaks since the last reset (one more sample first), and start again."""
        self.sample()
        out, self.peak = self.peak, {}
        return out

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def generator_limits(pids: list[int]) -> list[int | None]:
    out: list[int | None] = []
    for pid in pids:
        limit = None
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    limit = int(line.split()[3])
        out.append(limit)
    return out


async def three_nodes(h: Harness) -> None:
    if not shutil.which("redis-server"):
        h.notes.append("nodes3: not available: redis-server is not installed (apt-get install redis-server)")
        return
    if h.args.nodes3_db == "sqlite":
        path = os.path.join(h.tmp, "nodes3.db")
        with redis_server(h.logdir, "redis-nodes3") as url:
            await _three_nodes(
                h, url, f"sqlite+aiosqlite:///{path}", "SQLite (one file)", _pids(REDIS_PIDS.get(url))
            )
        return
    sys.path.insert(0, ROOT)
    from tests.infra.postgres import PostgresServer  # the tests' throw-away server, made durable

    try:
        pg = PostgresServer(durable=True)
        pg.start()
    except Exception as exc:
        h.notes.append(f"nodes3: not available: {exc}".splitlines()[0][:300])
        return
    try:
        with redis_server(h.logdir, "redis-nodes3") as url:
            await _three_nodes(
                h,
                url,
                pg.create_database("bench3"),
                "PostgreSQL 15 (fsync and synchronous commits on)",
                _pids(REDIS_PIDS.get(url), pg.pid),
            )
    finally:
        pg.close()


def _latencies(w: dict[str, Any], t0: float) -> list[float]:
    return [(t - t0) * 1000 for t in w["times"]]


async def _settle(h: Harness, servers: list[Server]) -> float:
    """Close every connection, then wait until the nodes together are idle (< 10 % of a core)."""
    t0 = monotonic()
    await h.lg.close()
    busy_until = monotonic()
    deadline = monotonic() + h.args.settle_timeout
    while monotonic() < deadline:
        a = sum(s.cpu() for s in servers)
        await asyncio.sleep(0.25)
        if sum(s.cpu() for s in servers) - a > 0.25 * 0.1:
            busy_until = monotonic()
        elif monotonic() - busy_until > 0.5:
            break
    return busy_until - t0


@contextlib.contextmanager
def _nodes(h: Harness, url: str, database_url: str) -> Iterator[dict[str, Server]]:
    nodes = {
        name: h.make("ours", f"nodes3-{name}", url, database_url, nofile=h.args.node_nofile) for name in NODES
    }
    try:
        yield nodes
    finally:
        for srv in nodes.values():
            srv.stop()


def _pids(*pids: int | None) -> tuple[int, ...]:
    return tuple(pid for pid in pids if pid is not None)


async def _three_nodes(
    h: Harness, url: str, database_url: str, db_label: str, services: tuple[int, ...]
) -> None:
    """``services``: the pids of Redis and PostgreSQL, whose CPU the storm reports on its own."""
    with _nodes(h, url, database_url) as nodes:
        a = nodes["A"]
        servers = list(nodes.values())
        fds = FdWatch(nodes, h.lg.pids)
        try:
            migrated = subprocess.run(
                [h.args.ours, "migrate"], env=a.env, capture_output=True, text=True, check=False
            )
            if migrated.returncode != 0:
                raise RuntimeError(f"migrate failed: {migrated.stderr[-300:]}")
            for srv in servers:
                srv.start()
            for srv in servers:
                await wait_healthy(h.http, srv)
            limits = {name: srv.nofile_limit() for name, srv in nodes.items()}
            gen_limits = generator_limits(h.lg.pids)
            log(f"  nodes3: {db_label}; open-file limits {limits}; generator workers {gen_limits}")
            info = {
                "database": db_label,
                "node_nofile": limits,
                "generator_nofile": gen_limits,
                "generator_procs": len(h.lg.pids),
            }
            ready, h.ours_ready = h.ours_ready, False  # a fresh database: enrol again
            try:
                await h.setup(a)
            finally:
                h.ours_ready = ready
            fds.start()
            if not await _probe(h, nodes):
                return
            tags = await _tokens(h)
            await _ramp_and_fanout(h, nodes, fds, tags, info)
            await _storm(h, nodes, fds, tags, services)
        except Exception as exc:
            log(f"  nodes3 FAILED: {exc!r}")
            h.notes.append(f"nodes3: failed: {exc or type(exc).__name__}".splitlines()[0][:300])
        finally:
            await fds.stop()
            with contextlib.suppress(Exception):
                await h.lg.close()
            for name, srv in nodes.items():
                if not srv.alive():
                    h.notes.append(f"nodes3: node {name} exited: {srv.log_tail(3)}"[:300])


async def _probe(h: Harness, nodes: dict[str, Server]) -> bool:
    """A few subscribers per node and two sessions started through node A (a warm-up): every
    node's subscribers must get them, else fanning N out is pointless."""
    a = nodes["A"]
    for k, (name, srv) in enumerate(nodes.items()):
        await h.lg.tokens(h.secret, STUDENT_PREFIX, 10 * k, 10, name="p" + name)
        await h.lg.open(
            host=HOST,
            port=srv.port,
            mode="sio",
            course_id=COURSE,
            gate="all",
            concurrency=10,
            tokens="p" + name,
            tag=name,
        )
    ok = True
    for _ in range(2):
        await h.lg.arm("courseSessionStarted")
        st, body = await h.start_session(a)
        w = await h.lg.wait("courseSessionStarted", timeout=10.0, times=False)
        if st == 201:
            await h.api(a, "POST", f"/api/sessions/{body['id']}/end", h.teacher)
        missing = [name for name in nodes if w["by_tag"].get(name, 0) == 0]
        if st != 201 or missing:
            h.notes.append(
                f"nodes3: not available: start through node A -> {st}; no courseSessionStarted "
                f"within 10 s on node(s) {', '.join(missing) or '-'}"
            )
            ok = False
            break
    await h.lg.close()
    await asyncio.sleep(0.5)
    return ok


async def _tokens(h: Harness) -> list[dict[str, Any]]:
    """N students, N/3 per node (the first node takes the remainder): one token set per node."""
    third, extra = divmod(h.N, len(NODES))
    start, out = 0, []
    for k, name in enumerate(NODES):
        count = third + (1 if k < extra else 0)
        await h.lg.tokens(h.secret, STUDENT_PREFIX, start, count, name="n" + name)
        out.append({"tokens": "n" + name, "tag": name, "count": count})
        start += count
    return out


def _targets(nodes: dict[str, Server], tags: list[dict[str, Any]]) -> dict[str, Any]:
    first, *more = tags
    return {
        "port": nodes[first["tag"]].port,
        "tokens": first["tokens"],
        "tag": first["tag"],
        "more": [{"port": nodes[t["tag"]].port, "tokens": t["tokens"], "tag": t["tag"]} for t in more],
    }


async def _fanout(
    h: Harness, nodes: dict[str, Server], phase: str, k: int, expected: dict[str, int]
) -> dict[str, Any]:
    """One session started and ended through node A; every client of every node must get both
    events exactly once. ``expected``: the clients per node that the ramp or storm opened."""
    a = nodes["A"]
    servers = list(nodes.values())
    for s in servers:
        s.reset_peak()
    target = await h.lg.arm("courseSessionStarted")
    c0 = sum(s.cpu() for s in servers)
    g0 = await h.gen_cpu()
    m0 = machine_busy()
    t0 = monotonic()
    st, body = await h.start_session(a)
    t_resp = monotonic()
    w = await h.lg.wait("courseSessionStarted", timeout=h.args.event_timeout, grace=h.args.dup_grace)
    c1 = sum(s.cpu() for s in servers)
    g1 = await h.gen_cpu()
    m1 = machine_busy()
    ended: dict[str, Any] = {"received": 0, "duplicates": 0}
    if st == 201 and isinstance(body, dict):
        await h.lg.arm("courseSessionEnded")
        await h.api(a, "POST", f"/api/sessions/{body['id']}/end", h.teacher)
        ended = await h.lg.wait(
            "courseSessionEnded", timeout=h.args.event_timeout, times=False, grace=h.args.dup_grace
        )
    lat = _latencies(w, t0)
    n = sum(expected.values())
    sample = {
        "phase": phase,
        "status": st,
        "expected": n,
        "target": target,
        "received": w["received"],
        "by_tag": w["by_tag"],
        "expected_by_tag": expected,
        "misses": n - w["received"],
        "duplicates": w["duplicates"],
        "ended_misses": n - ended["received"],
        "ended_duplicates": ended["duplicates"],
        "served_all": w["received"] == n
        and ended["received"] == n
        and not w["duplicates"]
        and not ended["duplicates"],
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else None,
        "first_ms": min(lat) if lat else None,
        "http_ms": (t_resp - t0) * 1000,
        "server_cpu_s": c1 - c0,
        "server_peak_mib_by_node": {name: s.peak_kib() / 1024 for name, s in nodes.items()},
        "gen_cpu_s": g1 - g0,
        "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
    }
    log(
        f"  nodes3 {phase} #{k}: {w['received']}/{n} (by node {w['by_tag']}) p50 {sample['p50_ms']:.1f} "
        f"p99 {sample['p99_ms']:.1f} max {sample['max_ms'] or float('nan'):.1f} first "
        f"{sample['first_ms'] or float('nan'):.1f} ms (http {sample['http_ms']:.0f} ms, nodes cpu "
        f"{sample['server_cpu_s']:.2f}s); misses {sample['misses']}+{sample['ended_misses']} (start+end), "
        f"duplicates {sample['duplicates']}+{sample['ended_duplicates']}"
    )
    await asyncio.sleep(0.5)
    return sample


async def _ramp_and_fanout(
    h: Harness, nodes: dict[str, Server], fds: FdWatch, tags: list[dict[str, Any]], info: dict[str, Any]
) -> None:
    servers = list(nodes.values())
    base = {name: s.rss_kib() for name, s in nodes.items()}
    fds.reset()
    c0 = sum(s.cpu() for s in servers)
    res = await h.lg.open(
        host=HOST,
        mode="sio",
        course_id=COURSE,
        gate="all",
        concurrency=h.args.ramp_concurrency,
        timeout=h.args.open_timeout,
        spread_sources=h.spread_sources,
        **_targets(nodes, tags),
    )
    await asyncio.sleep(1.0)
    opened_by = {tag: int(v[0]) for tag, v in res["by_tag"].items()}
    stats = await h.lg.stats()
    ramp = {
        **info,
        "opened": res["opened"],
        "opened_by_node": opened_by,
        "errors": res["errors"],
        "ramp_s": res["t1"] - res["t0"],
        "server_cpu_s": sum(s.cpu() for s in servers) - c0,
        "rss_mib_by_node": {name: s.rss_kib() / 1024 for name, s in nodes.items()},
        "rss_mib_total": sum(s.rss_kib() for s in servers) / 1024,
        "rss_base_mib_by_node": {name: v / 1024 for name, v in base.items()},
        "gen_rss_mib_max": stats["maxrss_kib"] / 1024,
        "gen_rss_mib_total": stats["maxrss_kib_total"] / 1024,
    }
    log(
        f"  nodes3 ramp: {res['opened']}/{h.N} subscribed ({opened_by}) in {ramp['ramp_s']:.1f}s; "
        f"errors {res['errors']}; RSS MiB {ramp['rss_mib_by_node']}"
    )
    with fds.pause():
        samples = [await _fanout(h, nodes, "fanout", k, opened_by) for k in range(h.args.node_triggers)]
    ramp["fd_peak"] = fds.reset()
    ramp["teardown_s"] = await _settle(h, servers)
    _fd_summary(ramp)
    log(f"  nodes3 open files, peak per process: {ramp['fd_peak']}; teardown {ramp['teardown_s']:.1f}s")
    h.add("nodes3-ramp", "ours", ramp)
    for s in samples:
        s["fd_peak"] = ramp["fd_peak"]
        h.add("nodes3", "ours", s)


def _fd_summary(sample: dict[str, Any]) -> None:
    peaks = sample["fd_peak"]
    sample["fd_peak_node_max"] = max((v for k, v in peaks.items() if k in NODES), default=None)
    sample["fd_peak_gen_max"] = max((v for k, v in peaks.items() if k.startswith("gen")), default=None)


async def _storm(
    h: Harness,
    nodes: dict[str, Server],
    fds: FdWatch,
    tags: list[dict[str, Any]],
    services: tuple[int, ...],
) -> None:
    servers = list(nodes.values())
    await asyncio.sleep(0.3)
    for s in servers:
        s.reset_peak()
    fds.reset()
    c0 = sum(s.cpu() for s in servers)
    g0 = await h.gen_cpu()
    m0 = machine_busy()
    irq0, steal0 = machine_parts()
    s0 = sum(tree_cpu(pid) for pid in services)
    res = await h.lg.open(
        host=HOST,
        mode="sio",
        course_id=COURSE,
        gate="upgrade",
        concurrency=h.args.storm_backlog,
        timeout=h.args.storm_timeout,
        spread_sources=h.spread_sources,
        **_targets(nodes, tags),
    )
    c1 = sum(s.cpu() for s in servers)
    g1 = await h.gen_cpu()
    m1 = machine_busy()
    irq1, steal1 = machine_parts()
    s1 = sum(tree_cpu(pid) for pid in services)
    lat = [(t - res["t0"]) * 1000 for t in res["times"]]
    completion = max(lat) / 1000 if lat else None
    opened_by = {tag: int(v[0]) for tag, v in res["by_tag"].items()}
    sample: dict[str, Any] = {
        "opened": res["opened"],
        "misses": h.N - res["opened"],
        "opened_by_node": opened_by,
        "completion_by_node_s": {tag: v[1] - res["t0"] for tag, v in res["by_tag"].items()},
        "errors": res["errors"],
        "completion_s": completion,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "conns_per_s": res["opened"] / completion if completion else None,
        "server_cpu_s": c1 - c0,
        "server_peak_mib_by_node": {name: s.peak_kib() / 1024 for name, s in nodes.items()},
        "peak_mib": sum(s.peak_kib() for s in servers) / 1024,
        "gen_cpu_s": g1 - g0,
        "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
        "services_cpu_s": s1 - s0,  # PostgreSQL's postmaster tree and Redis: part of other_cpu_s
        "irq_cpu_s": irq1 - irq0,  # hard and soft interrupts (loopback TCP): part of other_cpu_s
        "steal_s": steal1 - steal0,
        "busy_s": m1 - m0,
        "deciles_ms": [pct(lat, q) for q in range(10, 100, 10)],
    }
    log(
        f"  nodes3 storm: {res['opened']}/{h.N} ({opened_by}) in {completion or float('nan'):.1f}s "
        f"(nodes cpu {sample['server_cpu_s']:.1f}s, gen cpu {sample['gen_cpu_s']:.1f}s) "
        f"errors {res['errors']}"
    )
    with fds.pause():
        after = await _fanout(h, nodes, "after storm", 0, opened_by)
    sample["fanout_after"] = {
        k: after[k] for k in ("misses", "duplicates", "ended_misses", "ended_duplicates")
    }
    sample["fanout_after_p99_ms"] = after["p99_ms"]
    sample["served_all"] = sample["misses"] == 0 and after["served_all"]
    sample["fd_peak"] = fds.reset()
    sample["teardown_s"] = await _settle(h, servers)
    _fd_summary(sample)
    log(f"  nodes3 open files, peak per process: {sample['fd_peak']}; teardown {sample['teardown_s']:.1f}s")
    h.add("nodes3-storm", "ours", sample)

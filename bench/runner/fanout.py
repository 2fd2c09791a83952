"""The fan-out scenarios: fan-out with memory and stalled readers, the storm, two nodes.

* fan-out: N subscribers of one course; a session started over HTTP; latency
  from the request to ``courseSessionStarted`` at each subscriber.
* memory: server RSS per idle subscribed connection (measured on the fan-out's ramp).
* stalled: the fan-out again with the same subscribers after a share of them
  stopped reading their socket.
* storm: N clients connect, authenticate, subscribe and receive their
  ``activeSessionsData`` snapshot at once: time until all have it.
* nodes: fan-out across two of our nodes over Redis (ours only).

Peak memory, here as in every scenario, is the servers' peak RSS summed over
every node the scenario runs (:func:`~.servers.peak_mib`).
"""

# A benchmark driver: time limits are parameters, and blocking calls between measurements are fine.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from .harness import COURSE, STUDENT_PREFIX, Harness
from .reporting import pct
from .servers import (
    HOST,
    Server,
    log,
    machine_busy,
    machine_parts,
    monotonic,
    peak_mib,
    redis_server,
    wait_healthy,
)


async def fanout_and_memory(h: Harness, srv: Server, label: str = "") -> None:
    kind = srv.kind
    mode = "plain" if kind == "floor" else "sio"
    await asyncio.sleep(0.5)
    base_rss = srv.rss_kib()
    srv.reset_peak()
    g0 = await h.gen_cpu()
    c0 = srv.cpu()
    if mode == "sio":
        await h.ensure_tokens("main")
        res = await h.lg.open(
            host=HOST,
            port=srv.port,
            mode="sio",
            course_id=COURSE,
            gate="all",
            concurrency=h.args.ramp_concurrency,
            timeout=h.args.open_timeout,
            spread_sources=h.spread_sources,
        )
    else:
        res = await h.lg.open(
            host=HOST,
            port=srv.port,
            mode="plain",
            count=h.N,
            gate="all",
            concurrency=h.args.ramp_concurrency,
            timeout=h.args.open_timeout,
            spread_sources=h.spread_sources,
        )
    if res["errors"]:
        log(f"  {kind} ramp errors: {res['errors']}")
    await asyncio.sleep(1.0)
    rss = srv.rss_kib()
    opened = res["opened"]
    h.add(
        "memory",
        kind,
        {
            "kib_per_conn": (rss - base_rss) / opened if opened else None,
            "rss_base_mib": base_rss / 1024,
            "rss_mib": rss / 1024,
            "opened": opened,
            "ramp_s": res["t1"] - res["t0"],
            "ramp_cpu_s": srv.cpu() - c0,
            "peak_mib": peak_mib([srv]),
            "gen_cpu_s": await h.gen_cpu() - g0,
            "gen_rss_mib": (await h.lg.stats())["maxrss_kib_total"] / 1024,
            "errors": res["errors"],
        },
    )
    log(
        f"  memory {kind}: {(rss - base_rss) / max(opened, 1):.1f} KiB/conn ({opened} open, "
        f"ramp {res['t1'] - res['t0']:.1f}s)"
    )
    for k in range(h.args.triggers):
        await one_fanout(h, srv, "fanout", k)
    if "stalled" in h.args.scenarios:
        stalled, of = await h.lg.stall(h.args.stalled_fraction)
        log(f"  stalled {kind}: {stalled} of {of} subscribers stopped reading")
        for k in range(h.args.triggers):
            await one_fanout(h, srv, "stalled", k, extra={"stalled": stalled, "of": of})
    await h.teardown(srv)


async def one_fanout(
    h: Harness,
    srv: Server,
    scenario: str,
    k: int,
    node_b: Server | None = None,
    timeout: float | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    kind = srv.kind
    target = await h.lg.arm("courseSessionStarted")
    servers = [srv] + ([node_b] if node_b else [])
    for s in servers:
        s.reset_peak()
    c0 = sum(s.cpu() for s in servers)
    g0 = await h.gen_cpu()
    m0 = machine_busy()
    t0 = monotonic()
    if kind == "floor":
        async with h.http.post(f"http://{HOST}:{srv.port}/trigger") as r:
            st = r.status
            await r.read()
        session_id = None
    else:
        st, body = await h.start_session(srv)
        session_id = body.get("id") if isinstance(body, dict) else None
    t_resp = monotonic()
    w = await h.lg.wait("courseSessionStarted", timeout=timeout or h.args.event_timeout)
    c1 = sum(s.cpu() for s in servers)
    g1 = await h.gen_cpu()
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
        "peak_mib": peak_mib(servers),
        "gen_cpu_s": g1 - g0,
        "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
        **(extra or {}),
    }
    h.add(scenario, kind, sample)
    log(
        f"  {scenario} {kind} #{k}: {w['received']}/{target} p50 {sample['p50_ms']:.1f} "
        f"p99 {sample['p99_ms']:.1f} max {sample['max_ms'] or float('nan'):.1f} ms "
        f"(http {sample['http_ms']:.1f} ms, server cpu {sample['server_cpu_s']:.2f}s, "
        f"gen cpu {sample['gen_cpu_s']:.2f}s)"
    )
    if session_id:
        await h.lg.arm("courseSessionEnded")
        _st2, _ = await h.api(srv, "POST", f"/api/sessions/{session_id}/end", h.teacher)
        await h.lg.wait("courseSessionEnded", timeout=timeout or h.args.event_timeout, times=False)
    await asyncio.sleep(0.5)


async def storm(h: Harness, srv: Server) -> None:
    kind = srv.kind
    mode = "plain" if kind == "floor" else "sio"
    if mode == "sio":
        await h.ensure_tokens("main")
    await asyncio.sleep(0.3)
    srv.reset_peak()
    c0 = srv.cpu()
    g0 = await h.gen_cpu()
    m0 = machine_busy()
    irq0, steal0 = machine_parts()
    kw: dict[str, Any] = dict(
        host=HOST,
        port=srv.port,
        gate="upgrade",
        concurrency=h.args.storm_backlog,
        timeout=h.args.storm_timeout,
        spread_sources=h.spread_sources,
    )
    if mode == "sio":
        res = await h.lg.open(mode="sio", course_id=COURSE, **kw)
    else:
        res = await h.lg.open(mode="plain", count=h.N, **kw)
    c1 = srv.cpu()
    g1 = await h.gen_cpu()
    m1 = machine_busy()
    irq1, steal1 = machine_parts()
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
        "peak_mib": peak_mib([srv]),
        "gen_cpu_s": g1 - g0,
        "other_cpu_s": (m1 - m0) - (c1 - c0) - (g1 - g0),
        "irq_cpu_s": irq1 - irq0,
        "steal_s": steal1 - steal0,
    }
    h.add("storm", kind, sample)
    log(
        f"  storm {kind}: {res['opened']}/{h.N} in {completion or float('nan'):.2f}s "
        f"(server cpu {sample['server_cpu_s']:.2f}s, gen cpu {sample['gen_cpu_s']:.2f}s) "
        f"errors={res['errors']}"
    )
    await h.teardown(srv)


async def many_nodes(h: Harness) -> None:
    if not shutil.which("redis-server"):
        h.notes.append(
            "many nodes: not available: redis-server is not installed (apt-get install redis-server)"
        )
        return
    with redis_server(h.logdir, "redis") as url:
        await _many_nodes(h, url)


async def _many_nodes(h: Harness, url: str) -> None:
    a = h.make("ours", "nodeA", url)
    b = h.make("ours", "nodeB", url)
    try:
        await asyncio.sleep(0.3)
        a.start()
        await wait_healthy(h.http, a)
        await h.setup(a)
        b.start()
        await wait_healthy(h.http, b)
        async with h.http.get(f"http://{HOST}:{a.port}/readyz") as r:
            ready = (r.status, await r.text())
        # probe with a few subscribers per node first: no point ramping N if events do not cross
        await h.lg.tokens(h.secret, STUDENT_PREFIX, 0, 10, name="pA")
        await h.lg.tokens(h.secret, STUDENT_PREFIX, 10, 10, name="pB")
        for srv, name in ((a, "A"), (b, "B")):
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
        await h.lg.arm("courseSessionStarted")
        st, body = await h.start_session(a)
        w = await h.lg.wait("courseSessionStarted", timeout=5.0, times=False)
        if st == 201:
            await h.api(a, "POST", f"/api/sessions/{body['id']}/end", h.teacher)
        await h.lg.close()
        if w["by_tag"].get("B", 0) == 0:
            h.notes.append(
                "many nodes: not available: subscribers on node B got no courseSessionStarted "
                "for a session started on node A within 5 s (REDIS_URL set; node A /readyz -> "
                f"{ready[0]} {ready[1][:160]}); the server does not fan out across nodes yet"
            )
            return
        await asyncio.sleep(0.5)
        half = h.N // 2
        await h.lg.tokens(h.secret, STUDENT_PREFIX, 0, half, name="A")
        await h.lg.tokens(h.secret, STUDENT_PREFIX, half, h.N - half, name="B")
        t_ramp = monotonic()
        res = await h.lg.open(  # both nodes in one interleaved ramp: they use both cores
            host=HOST,
            port=a.port,
            mode="sio",
            course_id=COURSE,
            gate="all",
            concurrency=h.args.ramp_concurrency,
            timeout=h.args.open_timeout,
            tokens="A",
            tag="A",
            more=[{"port": b.port, "tokens": "B", "tag": "B"}],
            spread_sources=h.spread_sources,
        )
        log(f"  nodes: {res['opened']}/{h.N} subscribed over two nodes in {monotonic() - t_ramp:.1f}s")
        if res["errors"]:
            log(f"  nodes: ramp errors: {res['errors']}")
        for k in range(h.args.node_triggers):
            await one_fanout(h, a, "nodes", k, node_b=b, timeout=min(h.args.event_timeout, 10.0))
            last = h.samples["nodes"]["ours"][-1]
            if last["by_tag"].get("B", 0) == 0:
                h.samples["nodes"]["ours"].pop()
                h.notes.append(
                    "many nodes: not available: subscribers on node B got no courseSessionStarted "
                    f"for a session started on node A within {min(h.args.event_timeout, 10.0)}s "
                    f"(REDIS_URL set, /readyz -> {ready[0]} {ready[1][:200]})"
                )
                break
    except Exception as exc:
        h.notes.append(f"many nodes: not available: {exc or type(exc).__name__}".splitlines()[0][:300])
    finally:
        await h.lg.close()
        a.stop()
        b.stop()

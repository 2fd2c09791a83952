"""The command line: options, the plan for N, the rounds, and the results files.

``main`` reads the options (``bench/run.py --help``), checks that N fits this
machine's open-file limits (:func:`plan_scale`), runs every round
(:func:`run`: servers alternate order, each round starts every server afresh)
and writes the table and the JSON to ``bench/results/``.
"""

# A benchmark driver: time limits are parameters, and blocking calls between measurements are fine.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import subprocess
import time
from typing import Any

import aiohttp
from loadgen import raise_nofile

import runner

from .checkin import checkin_burst, checkin_postgres, checkin_socket_burst
from .fanout import fanout_and_memory, many_nodes, storm
from .harness import SPREAD_SOURCES_ABOVE, Harness
from .nodes3 import NODE_NOFILE, NODES, three_nodes
from .reporting import collect, render, summarize
from .servers import HERE, ROOT, log, machine_busy, monotonic, wait_healthy

# Connections one generator worker holds at most when --procs is not given.
CONNECTIONS_PER_WORKER = 20000
# File descriptors a server needs besides its N websockets (HTTP pool of the burst, database, logs).
FD_MARGIN = 1500
# The scenarios of the rounds (one server process holds all N); the many-node ones run after them.
ROUND_SCENARIOS = {"fanout", "memory", "stalled", "storm", "checkin", "checkin-socket"}
ALL_SCENARIOS = "fanout,memory,stalled,storm,checkin,checkin-socket,nodes,checkin-pg,nodes3"


async def run(h: Harness) -> dict[str, Any]:
    """Every round of every server, then the many-node scenarios; the run as JSON."""
    raise_nofile()
    h.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    await h.lg.start()
    kinds = [k for k in h.args.servers.split(",") if k]
    try:
        for rnd in range(h.args.rounds if h.args.scenarios & ROUND_SCENARIOS else 0):
            if rnd > 0 and monotonic() > h.t_start + h.args.budget * 0.7:
                h.notes.append(f"stopped after {rnd} rounds: time budget ({h.args.budget}s)")
                break
            order = kinds if rnd % 2 == 0 else list(reversed(kinds))
            for kind in order:
                log(f"round {rnd + 1}/{h.args.rounds}: {kind}")
                h.round_tag = f"r{rnd + 1}"
                b0, w0 = machine_busy(), monotonic()
                await asyncio.sleep(1.0)
                background = (machine_busy() - b0) / (monotonic() - w0)
                h.background.append({"round": rnd + 1, "before": kind, "cores_busy": round(background, 2)})
                if background > 0.15:
                    log(f"  warning: {background:.2f} cores busy before the round (other processes)")
                    h.notes.append(
                        f"background load: {background:.2f} of {os.cpu_count()} cores busy "
                        f"with other processes just before {kind} round {rnd + 1}"
                    )
                srv = h.make(kind, h.round_tag)
                srv.start()
                try:
                    await wait_healthy(h.http, srv)
                    await h.setup(srv)
                    if kind != "floor":
                        await h.warmup(srv)
                    gc.collect()
                    if h.args.scenarios & {"fanout", "memory", "stalled"}:
                        async with h.profile(srv, "fanout"):
                            await fanout_and_memory(h, srv)
                    if "storm" in h.args.scenarios:
                        async with h.profile(srv, "storm"):
                            await storm(h, srv)
                    if "checkin" in h.args.scenarios and kind != "floor":
                        async with h.profile(srv, "checkin"):
                            await checkin_burst(h, srv)
                    if "checkin-socket" in h.args.scenarios and kind == "ours":  # the peer has no checkIn
                        async with h.profile(srv, "checkin-socket"):
                            await checkin_socket_burst(h, srv)
                except Exception as exc:
                    log(f"  {kind} round {rnd + 1} FAILED: {exc}")
                    msg = (str(exc) or type(exc).__name__).splitlines()[0][:300]
                    h.notes.append(f"{kind} round {rnd + 1} failed: {msg}")
                    with contextlib.suppress(Exception):
                        await h.lg.close()
                finally:
                    srv.stop()
        if "nodes" in h.args.scenarios and "ours" in kinds:
            log("many nodes: ours x2 over Redis")
            await many_nodes(
                h,
            )
        if "checkin-pg" in h.args.scenarios and "ours" in kinds:
            log("check-in on PostgreSQL: ours x2 over Redis")
            await checkin_postgres(
                h,
            )
        if "nodes3" in h.args.scenarios and "ours" in kinds:
            log(f"three nodes: ours x3 over Redis, N={h.N:,}")
            await three_nodes(h)
        h.gen_total = await h.gen_cpu()
    finally:
        await h.lg.stop()
        await h.http.close()
        shutil.rmtree(h.tmp, ignore_errors=True)
    return collect(h)


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
    needs: dict[str, tuple[int, int]] = {  # who: (open files needed, the limit it has)
        f"one of {args.procs} load generator processes": (per_worker + FD_MARGIN, hard)
    }
    if args.scenarios - {"nodes3"}:
        needs["one server process"] = (n + args.burst_pool + FD_MARGIN, hard)
    if "nodes3" in args.scenarios:
        if args.node_nofile > hard:
            raise SystemExit(f"--node-nofile {args.node_nofile:,} is above the hard limit here ({hard:,})")
        needs[f"one of the {len(NODES)} nodes (--node-nofile)"] = (
            -(-n // len(NODES)) + FD_MARGIN,
            args.node_nofile,
        )
    for who, (need, limit) in needs.items():
        if need > limit:
            if "nodes" in who:
                raise SystemExit(
                    f"N={n:,} needs {need:,} open files in {who}, above its limit of {limit:,}: "
                    "run a smaller -n or give the nodes a larger --node-nofile."
                )
            raise SystemExit(
                f"N={n:,} needs {need:,} open files in {who}, but the hard limit here is {limit:,} "
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
    ap = argparse.ArgumentParser(
        description=runner.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="N=500, 2 rounds, 2 triggers: for development")
    ap.add_argument("-n", type=int, help="subscribers (default 10000; --quick 500)")
    ap.add_argument("--rounds", type=int, help="rounds per server (default 3; --quick 2)")
    ap.add_argument("--triggers", type=int, help="fan-out triggers per round (default 3; --quick 2)")
    ap.add_argument("--servers", default="ours,peer,floor", help="comma list of ours,peer,floor")
    ap.add_argument(
        "--scenarios",
        default="fanout,memory,stalled,storm,checkin,checkin-socket,nodes,checkin-pg",
        help=f"comma list of {ALL_SCENARIOS} (default: all but nodes3, which runs alone: "
        "--servers ours --scenarios nodes3 -n 50000)",
    )
    ap.add_argument(
        "--nodes3-db",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="the three nodes' shared database: a throw-away durable PostgreSQL, or one SQLite file",
    )
    ap.add_argument(
        "--node-nofile",
        type=int,
        default=NODE_NOFILE,
        help=f"open-file limit (soft and hard) of each node in nodes3 (default {NODE_NOFILE:,})",
    )
    ap.add_argument(
        "--dup-grace",
        type=float,
        default=0.5,
        help="nodes3: seconds to keep counting arrivals after the last client has an event, "
        "so a second copy is seen",
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
    unknown = args.scenarios - set(ALL_SCENARIOS.split(","))
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {ALL_SCENARIOS}")
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
    result = asyncio.run(run(Harness(args)))
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

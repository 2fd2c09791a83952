"""The numbers of a run: percentiles, the summary table with its ratios, machine facts.

:data:`METRICS` names every row: scenario, sample key, label, and which way is
better (``"none"``: a fact of the machine or of the schedule, printed without
a ratio). :func:`summarize` takes the median over rounds; :func:`render` is
the Markdown table printed and saved beside the JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from typing import Any

from .harness import Harness
from .servers import HERE, ROOT, monotonic


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, round(q / 100 * len(v) + 0.5) - 1))  # nearest rank
    return v[k]


def med(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and v == v]
    return statistics.median(vals) if vals else None


METRICS: list[tuple[str, str, str, str]] = [
    # scenario, key, label, better ("none": no ratio is printed)
    ("fanout", "first_ms", "fan-out first arrival (ms)", "low"),
    ("fanout", "p50_ms", "fan-out p50 (ms)", "low"),
    ("fanout", "p99_ms", "fan-out p99 (ms)", "low"),
    ("fanout", "max_ms", "fan-out max (ms)", "low"),
    ("fanout", "http_ms", "fan-out HTTP response (ms)", "low"),
    ("fanout", "msgs_per_s", "fan-out throughput (msg/s)", "high"),
    ("fanout", "server_cpu_s", "fan-out server CPU (s)", "low"),
    ("fanout", "peak_mib", "fan-out server peak RSS (MiB)", "low"),
    ("fanout", "gen_cpu_s", "fan-out generator CPU (s)", "low"),
    ("fanout", "other_cpu_s", "fan-out other CPU: kernel + other procs (s)", "none"),
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
    ("storm", "other_cpu_s", "storm other CPU: kernel + other procs (s)", "none"),
    ("storm", "irq_cpu_s", "storm of that: interrupts, hard and soft (s)", "none"),
    ("storm", "steal_s", "storm of that: steal, vCPU waiting for the host (s)", "none"),
    ("memory", "kib_per_conn", "memory per idle subscriber (KiB)", "low"),
    ("memory", "rss_base_mib", "RSS before connections (MiB)", "low"),
    ("memory", "rss_mib", "RSS with N subscribed (MiB)", "low"),
    ("memory", "gen_rss_mib", "load generator peak RSS since start, all workers (MiB)", "low"),
    ("memory", "ramp_s", "gentle ramp of N (s)", "low"),
    ("memory", "ramp_cpu_s", "gentle ramp server CPU (s)", "low"),
    ("teardown", "seconds", "teardown of N: server busy (s)", "low"),
    ("teardown", "server_cpu_s", "teardown of N: server CPU (s)", "low"),
    ("checkin", "p50_ms", "check-in p50 (ms)", "low"),
    ("checkin", "p95_ms", "check-in p95 (ms)", "low"),
    ("checkin", "p99_ms", "check-in p99 (ms)", "low"),
    ("checkin", "max_ms", "check-in max (ms)", "low"),
    ("checkin", "errors", "check-in errors (not 200)", "low"),
    (
        "checkin",
        "completed_per_s",
        "check-in rate offered and answered (req/s; open loop, not capacity)",
        "none",
    ),
    ("checkin", "server_cpu_s", "check-in server CPU (s)", "low"),
    ("checkin", "cpu_per_checkin_ms", "check-in server CPU per check-in (ms)", "low"),
    ("checkin", "peak_mib", "check-in server peak RSS (MiB)", "low"),
    ("checkin", "gen_cpu_s", "check-in generator CPU (s)", "low"),
    ("checkin", "other_cpu_s", "check-in other CPU: kernel + other procs (s)", "none"),
    ("checkin-socket", "p50_ms", "check-in over the socket: p50 (ms)", "low"),
    ("checkin-socket", "p95_ms", "check-in over the socket: p95 (ms)", "low"),
    ("checkin-socket", "p99_ms", "check-in over the socket: p99 (ms)", "low"),
    ("checkin-socket", "max_ms", "check-in over the socket: max (ms)", "low"),
    ("checkin-socket", "errors", "check-in over the socket: errors (not ok)", "low"),
    ("checkin-socket", "server_cpu_s", "check-in over the socket: server CPU (s)", "low"),
    ("checkin-socket", "cpu_per_checkin_ms", "check-in over the socket: server CPU per check-in (ms)", "low"),
    ("checkin-socket", "gen_cpu_s", "check-in over the socket: generator CPU (s)", "low"),
    ("checkin-socket", "other_cpu_s", "check-in over the socket: other CPU (s)", "none"),
    ("checkin-pg", "p50_ms", "check-in on PostgreSQL, 2 nodes: p50 (ms)", "low"),
    ("checkin-pg", "p99_ms", "check-in on PostgreSQL, 2 nodes: p99 (ms)", "low"),
    ("checkin-pg", "max_ms", "check-in on PostgreSQL, 2 nodes: max (ms)", "low"),
    ("checkin-pg", "server_cpu_s", "check-in on PostgreSQL, 2 nodes: servers' CPU (s)", "low"),
    (
        "checkin-pg",
        "cpu_per_checkin_ms",
        "check-in on PostgreSQL, 2 nodes: servers' CPU per check-in (ms)",
        "low",
    ),
    (
        "checkin-pg",
        "all_cpu_per_checkin_ms",
        "check-in on PostgreSQL, 2 nodes: all processes' CPU per check-in (ms; nodes, PostgreSQL, Redis)",
        "low",
    ),
    # nodes3: ours only (the peer is one node with its state in memory); N over three nodes
    ("nodes3-ramp", "opened", "3 nodes: clients subscribed by the gentle ramp (of N)", "none"),
    ("nodes3-ramp", "ramp_s", "3 nodes: gentle ramp of N (s)", "none"),
    ("nodes3", "first_ms", "3 nodes fan-out first arrival (ms)", "none"),
    ("nodes3", "p50_ms", "3 nodes fan-out p50 (ms)", "none"),
    ("nodes3", "p99_ms", "3 nodes fan-out p99 (ms)", "none"),
    ("nodes3", "max_ms", "3 nodes fan-out max (ms)", "none"),
    ("nodes3", "http_ms", "3 nodes fan-out HTTP response, node A (ms)", "none"),
    ("nodes3", "server_cpu_s", "3 nodes fan-out CPU, all nodes (s)", "none"),
    ("nodes3", "misses", "3 nodes fan-out: clients without the start (of N)", "none"),
    ("nodes3", "duplicates", "3 nodes fan-out: second copies of the start", "none"),
    ("nodes3", "ended_misses", "3 nodes fan-out: clients without the end (of N)", "none"),
    ("nodes3-ramp", "fd_peak_node_max", "3 nodes: open files, largest node's peak (ramp + fan-out)", "none"),
    ("nodes3-ramp", "fd_peak_gen_max", "3 nodes: open files, largest generator worker's peak", "none"),
    ("nodes3-ramp", "rss_mib_total", "3 nodes: RSS with N subscribed, all nodes (MiB)", "none"),
    ("nodes3-ramp", "teardown_s", "3 nodes: teardown of N, nodes busy (s)", "none"),
    ("nodes3-storm", "opened", "3 nodes storm: clients with snapshot (of N)", "none"),
    ("nodes3-storm", "completion_s", "3 nodes storm completion (s)", "none"),
    ("nodes3-storm", "p50_ms", "3 nodes storm p50 (ms)", "none"),
    ("nodes3-storm", "p99_ms", "3 nodes storm p99 (ms)", "none"),
    ("nodes3-storm", "server_cpu_s", "3 nodes storm CPU, all nodes (s)", "none"),
    ("nodes3-storm", "peak_mib", "3 nodes storm peak RSS, sum of the nodes' peaks (MiB)", "none"),
    ("nodes3-storm", "gen_cpu_s", "3 nodes storm generator CPU (s)", "none"),
    ("nodes3-storm", "other_cpu_s", "3 nodes storm other CPU: kernel + other procs (s)", "none"),
    ("nodes3-storm", "services_cpu_s", "3 nodes storm of that: PostgreSQL + Redis (s)", "none"),
    ("nodes3-storm", "irq_cpu_s", "3 nodes storm of that: interrupts, hard and soft (s)", "none"),
    ("nodes3-storm", "fanout_after_p99_ms", "3 nodes: fan-out p99 to the stormed clients (ms)", "none"),
    ("nodes3-storm", "fd_peak_node_max", "3 nodes storm: open files, largest node's peak", "none"),
]


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    rows = []
    by_scenario = result["samples"]
    stalled_pct = f"{100 * float(result['config'].get('stalled_fraction', 0.01)):g} %"
    for scen, key, label, better in METRICS:
        label = label.replace("1 % stalled", f"{stalled_pct} stalled")
        vals = {
            k: med([s.get(key) for s in by_scenario.get(scen, {}).get(k, [])])
            for k in ("ours", "peer", "floor")
        }
        if all(v is None for v in vals.values()):
            continue
        o, p, f = vals["ours"], vals["peer"], vals["floor"]
        if better == "none":  # background or the schedule's rate, not a property of the server: no ratio
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
    for scen in ("checkin", "checkin-socket", "checkin-pg"):
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
    for scen in ("nodes3", "nodes3-storm"):
        for s in by_scenario.get(scen, {}).get("ours", []):
            if not s.get("served_all"):
                errors.append(f"{scen}: not every client served: {_served(s)}")
    return {"rows": rows, "checkin_checks": checks, "errors": errors}


def _served(s: dict[str, Any]) -> str:
    keys = ("misses", "duplicates", "ended_misses", "ended_duplicates", "errors", "fanout_after")
    return ", ".join(f"{k}={s[k]}" for k in keys if k in s)


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
        f"generator processes={cfg['procs']}, stalled subscribers={100 * cfg['stalled_fraction']:g} %"
        + (
            f"; three nodes (nodes3): N/3 per node, {cfg.get('node_triggers')} fan-out triggers "
            "through node A (3-node rows: medians over those triggers; ours only)"
            if "nodes3" in cfg.get("scenarios", ())
            else ""
        ),
        f"elapsed {result['elapsed_s']:.0f}s; load generator CPU total "
        f"{result['generator_cpu_s_total']:.1f}s (workers + driver)",
        "",
        "medians over rounds (fan-out: over all triggers); ratios < 1 favour ours for times/CPU/memory, "
        "> 1 for throughput; peak RSS is each node's VmHWM summed over the scenario's nodes",
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
    out.extend(_three_nodes_lines(result["samples"]))
    for e in summary["errors"]:
        out.append("error: " + e)
    for n in result["notes"]:
        out.append("note: " + n)
    return "\n".join(out)


def _three_nodes_lines(by_scenario: dict[str, Any]) -> list[str]:
    """nodes3: the database, each process's open-file limit and peak, and whether every client was
    served (every event once; the storm's every client its snapshot)."""
    out = []
    for ramp in by_scenario.get("nodes3-ramp", {}).get("ours", []):
        out.append(
            f"three nodes: {ramp['database']}; open-file limit per node {ramp['node_nofile']}, per "
            f"generator worker {ramp['generator_nofile']}; peak open files, ramp + fan-out: "
            f"{ramp['fd_peak']}; "
            f"RSS with N subscribed (MiB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in ramp["rss_mib_by_node"].items())
        )
    for storm in by_scenario.get("nodes3-storm", {}).get("ours", []):
        out.append(f"three nodes storm: peak open files {storm['fd_peak']}; errors {storm['errors']}")
    samples = [
        *by_scenario.get("nodes3", {}).get("ours", []),
        *by_scenario.get("nodes3-storm", {}).get("ours", []),
    ]
    if samples:
        served = all(s.get("served_all") for s in samples)
        out.append(
            "three nodes, every client served (each event exactly once at each of the N clients, and "
            f"every stormed client its snapshot): {'yes' if served else 'NO'} ({len(samples)} checks)"
        )
    return out


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


def collect(h: Harness) -> dict[str, Any]:
    """The run as JSON: command, machine, options, notes and every sample."""
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [
                os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT) else sys.executable,
                os.path.relpath(sys.argv[0], ROOT),
                *sys.argv[1:],
            ]
        ),
        "machine": machine_facts(h.args.node),
        "config": {k: v for k, v in vars(h.args).items()},
        "setup": h.setup_info,
        "notes": h.notes,
        "background": h.background,
        "generator_cpu_s_total": h.gen_total,
        "elapsed_s": monotonic() - h.t_start,
        "samples": h.samples,
    }

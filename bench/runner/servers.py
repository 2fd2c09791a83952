"""The processes a benchmark measures: servers, a throw-away Redis, py-spy.

:class:`Server` starts one server (ours, the Node.js peer or the floor) in its
own process group and reads its CPU time and memory from ``/proc`` over the
whole process tree. Nothing here knows the scenarios.
"""

# A benchmark driver: starting servers or py-spy with blocking calls between measurements is fine.
# ruff: noqa: ASYNC109, ASYNC220

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp

#: bench/, where the peer, the floor and results/ live.
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(HERE)
monotonic = time.monotonic
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


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


def machine_parts() -> tuple[float, float]:
    """Of ``machine_busy``: (interrupt handling, hard and soft; steal) in CPU seconds.

    Neither is charged to a process: softirq is where loopback TCP and block I/O
    completions run, steal is a virtual machine's vCPU waiting for its host."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (/proc)."""
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
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of ``root``'s process tree (the living processes)."""
    total = 0
    for p in process_tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


# The throw-away Redis servers' pids by URL (their CPU counts in checkin-pg's "all processes").
REDIS_PIDS: dict[str, int] = {}


class Server:
    """A server process and its tree, measured from /proc."""

    def __init__(
        self,
        kind: str,
        cmd: list[str],
        env: dict[str, str],
        port: int,
        logpath: str,
        nofile: int | None = None,
    ) -> None:
        """``nofile``: the process's open-file limit, soft and hard (default: the hard limit here)."""
        self.kind, self.cmd, self.env, self.port, self.logpath = kind, cmd, env, port, logpath
        self.nofile = nofile
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        nofile = self.nofile

        def limits() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # no CAP_SYS_RESOURCE: soft up to hard
            limit = hard if nofile is None or (hard != resource.RLIM_INFINITY and nofile > hard) else nofile
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
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
        return process_tree(self.pid)

    def cpu(self) -> float:
        return tree_cpu(self.pid)

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

    def status_kib(self, key: str) -> int:
        """A ``/proc/<pid>/status`` line in KiB (``"RssAnon:"``), summed over the tree."""
        return self._status(key)

    def open_files(self) -> int:
        """File descriptors open now, summed over the process tree (/proc/PID/fd)."""
        total = 0
        for p in self.tree():
            with contextlib.suppress(OSError):
                total += len(os.listdir(f"/proc/{p}/fd"))
        return total

    def nofile_limit(self) -> int | None:
        """The soft open-file limit in effect in the process (/proc/PID/limits)."""
        try:
            with open(f"/proc/{self.pid}/limits") as f:
                for line in f:
                    if line.startswith("Max open files"):
                        return int(line.split()[3])
        except (OSError, ValueError):
            pass
        return None

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

    def __init__(self, srv: Server, base: str, *, enabled: bool, py_spy: str) -> None:
        """``base``: the output path without its extension; ``py_spy``: the py-spy executable."""
        self.on = enabled and srv.kind == "ours"
        self.srv, self.base, self.py_spy = srv, base, py_spy
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> PySpy:
        if self.on:
            self.proc = subprocess.Popen(
                [
                    self.py_spy,
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


def peak_mib(servers: list[Server]) -> float:
    """The one peak-memory rule of every scenario: each node's peak RSS since its last
    :meth:`Server.reset_peak` (VmHWM over its process tree), summed over the nodes the scenario
    runs. The nodes may peak at different instants, so with several nodes it is an upper bound of
    what they held at once; it is what a deployment must provision."""
    return sum(server.peak_kib() for server in servers) / 1024


@contextlib.contextmanager
def redis_server(logdir: str, name: str) -> Iterator[str]:
    """A throw-away redis-server on loopback (yields its URL), stopped at the end."""
    rport = free_port()
    with open(os.path.join(logdir, f"{name}.log"), "ab") as rlog:
        redis = subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", HOST, "--save", "", "--appendonly", "no"],
            stdout=rlog,
            stderr=subprocess.STDOUT,
        )
        url = f"redis://{HOST}:{rport}/0"
        REDIS_PIDS[url] = redis.pid
        try:
            yield url
        finally:
            REDIS_PIDS.pop(url, None)
            redis.terminate()
            redis.wait()

"""Child processes for services that tests start: found or installed, started, always reaped.

Every service runs in its own process group, so stopping it reaches its
workers too (PostgreSQL backends, nginx workers). Three nets make sure nothing
outlives the test session: the fixtures' finalizers, an ``atexit`` hook, and a
parent-death signal on the service's main process (Linux), which also covers
a pytest that was itself killed. The kernel sends that signal when the
*thread* that started the child ends, so it is set only for children started
from the main thread (one started from ``asyncio.to_thread`` would otherwise
die with the worker thread).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "ServiceChild",
    "ServiceUnavailable",
    "ensure_installed",
    "free_port",
    "wait_until",
]

APT_TIMEOUT_SECONDS = 900
_PR_SET_PDEATHSIG = 1


class ServiceUnavailable(RuntimeError):
    """A service the tests need is not installed and could not be installed, or would not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


def _find(patterns: Sequence[str]) -> Path | None:
    for pattern in patterns:
        matches = sorted(glob.glob(pattern), key=_version_key, reverse=True)
        for match in matches:
            if os.access(match, os.X_OK):
                return Path(match)
    return None


def ensure_installed(package: str, patterns: Sequence[str], *, what: str) -> Path:
    """The newest executable matching ``patterns``; installs Debian's ``package`` when there is none.

    Installing needs root and apt-get (as on the project's machines and CI).
    When it is impossible, raise :class:`ServiceUnavailable` with the command
    that fixes it: a missing service fails the tests, it never skips them.
    """
    found = _find(patterns)
    if found is not None:
        return found
    how = f"install it with `apt-get update && apt-get install -y {package}` (as root)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceUnavailable(f"{what} is not installed ({' or '.join(patterns)} missing); {how}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    outputs: list[str] = []
    # Try the package lists we have first; refresh them only when that fails.
    for steps in ([install], [["apt-get", "update", "-q"], install]):
        ok = True
        for step in steps:
            done = subprocess.run(
                step, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS, check=False
            )
            outputs.append(f"$ {' '.join(step)}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
            if done.returncode != 0:
                ok = False
                break
        found = _find(patterns)
        if ok and found is not None:
            return found
    raise ServiceUnavailable(
        f"{what} is not installed and installing Debian's {package} failed; {how}.\n" + "\n".join(outputs)
    )


def _die_with_parent() -> None:
    """In the child (after its user was set): get SIGKILL when the test process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not glibc/Linux: the finalizers and atexit still apply
        pass


_LIVE: set[ServiceChild] = set()


class ServiceChild:
    """One service process (and its process group), with its output in ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        user: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.user = user
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                user=self.user,
                process_group=0,
                # only prctl, in the child after fork and setuid; see the module docstring
                preexec_fn=_die_with_parent
                if threading.current_thread() is threading.main_thread()
                else None,
            )
        _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exited(self) -> int | None:
        """The exit status when the main process has ended, else None."""
        return None if self.process is None else self.process.poll()

    def stop(self, signum: int = signal.SIGTERM, *, timeout: float = 30.0) -> int | None:
        """Send ``signum`` to the main process and wait; SIGKILL the group after ``timeout``.

        Returns the exit status (None when it was not running). The rest of the
        group is killed afterwards either way, so no worker outlives its master.
        """
        process = self.process
        if process is None:
            return None
        code = process.poll()
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                code = process.wait(timeout=30)
        self._kill_group()
        _LIVE.discard(self)
        return code

    def kill(self) -> int | None:
        """SIGKILL the whole group at once (a crash, not a shutdown)."""
        process = self.process
        if process is None:
            return None
        self._kill_group()
        code = process.wait(timeout=30)
        _LIVE.discard(self)
        return code

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@atexit.register
def _reap_everything() -> None:
    for child in list(_LIVE):
        child.kill()

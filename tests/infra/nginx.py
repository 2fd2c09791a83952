"""nginx from Debian's package in front of test nodes, running the shipped configuration.

``render_site`` takes ``deploy/nginx/attendance-live.conf`` and replaces only
what differs in a test: the node lines between its ``BEGIN``/``END`` markers
and its ``listen`` lines. :class:`NginxServer` wraps the result in a minimal
main configuration (pid, logs and temporary files in its own directory,
``daemon off``) and runs nginx as a child process.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.infra._process import (
    ServiceChild,
    ServiceUnavailable,
    ensure_installed,
    free_port,
    port_open,
    wait_until,
)

__all__ = ["SITE_CONFIG", "NginxServer", "render_site"]

SITE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "attendance-live.conf"
START_TIMEOUT_SECONDS = 30.0

_NODES = re.compile(
    r"^[ \t]*# BEGIN attendance-live nodes[ \t]*\n(?P<body>.*?)^[ \t]*# END attendance-live nodes",
    re.MULTILINE | re.DOTALL,
)
_SERVER_LINE = re.compile(r"^(?P<indent>[ \t]*)server[ \t]+\S+(?P<options>[^;\n]*);", re.MULTILINE)
_LISTEN = re.compile(r"^[ \t]*listen[ \t]+[^;\n]+;[ \t]*\n", re.MULTILINE)


def render_site(
    template: str,
    *,
    nodes: Sequence[str],
    listen: str,
    keep_options: bool = True,
) -> str:
    """The site configuration with ``nodes`` (``HOST:PORT``) as upstream servers, listening on ``listen``.

    Each node line keeps the options (``max_fails``...) of the template's first
    node line when ``keep_options``. The template's listen lines are replaced
    by one ``listen {listen};``.
    """
    if not nodes:
        raise ValueError("an upstream needs at least one node")
    found = _NODES.search(template)
    if found is None:
        raise ValueError("the template has no '# BEGIN attendance-live nodes' ... '# END' block")
    first = _SERVER_LINE.search(found["body"])
    if first is None:
        raise ValueError("the template's node block has no `server HOST:PORT ...;` line")
    options = first["options"] if keep_options else ""
    lines = "".join(f"{first['indent']}server {node}{options};\n" for node in nodes)
    text = template[: found.start("body")] + lines + template[found.end("body") :]
    listens = list(_LISTEN.finditer(text))
    if not listens:
        raise ValueError("the template has no `listen` line")
    indent = re.match(r"[ \t]*", listens[0].group(0))
    prefix = indent.group(0) if indent else "    "
    pieces: list[str] = []
    last = 0
    for index, match in enumerate(listens):
        pieces.append(text[last : match.start()])
        if index == 0:
            pieces.append(f"{prefix}listen {listen};\n")
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


def _main_config(base: Path, site: Path, user: str | None) -> str:
    temp = base / "temp"
    lines = [
        "# Test wrapper around the shipped site configuration (written by tests/infra/nginx.py).",
        "daemon off;",
        "worker_processes 1;",
        f"pid {base / 'nginx.pid'};",
        f"error_log {base / 'error.log'} info;",
    ]
    if user:
        lines.append(f"user {user};")
    lines += [
        "events { worker_connections 1024; }",
        "http {",
        # Which node served each request, found by the request id the node echoes back.
        "    log_format upstreams '$request_id $remote_addr \"$request\" $status upstream=$upstream_addr';",
        f"    access_log {base / 'access.log'} upstreams;",
        f"    client_body_temp_path {temp / 'client_body'};",
        f"    proxy_temp_path {temp / 'proxy'};",
        f"    fastcgi_temp_path {temp / 'fastcgi'};",
        f"    uwsgi_temp_path {temp / 'uwsgi'};",
        f"    scgi_temp_path {temp / 'scgi'};",
        "    default_type application/octet-stream;",
        f"    include {site};",
        "}",
    ]
    return "\n".join(lines) + "\n"


class NginxServer:
    """nginx proxying to ``nodes`` (``HOST:PORT``) on ``127.0.0.1:port``."""

    def __init__(
        self,
        nodes: Sequence[str],
        *,
        port: int | None = None,
        template: Path = SITE_CONFIG,
        base_dir: Path | None = None,
    ) -> None:
        self.binary = ensure_installed("nginx", ["/usr/sbin/nginx", "/usr/bin/nginx"], what="nginx")
        self.nodes = list(nodes)
        self.port = port or free_port()
        self.template = template
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="attendance-nginx-"))
        self.site_path = self.base_dir / "attendance-live.conf"
        self.main_path = self.base_dir / "nginx.conf"
        self.log_path = self.base_dir / "nginx.out"
        self._child: ServiceChild | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        (self.base_dir / "temp").mkdir(exist_ok=True)
        site = render_site(self.template.read_text(), nodes=self.nodes, listen=f"127.0.0.1:{self.port}")
        self.site_path.write_text(site)
        # As root, nginx's workers would run as `nobody`; keep them as the
        # current user so they can use the temporary directories made here.
        user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
        self.main_path.write_text(_main_config(self.base_dir, self.site_path, user))

    def _argv(self, *extra: str) -> list[str]:
        return [
            str(self.binary),
            "-p",
            str(self.base_dir),
            "-c",
            str(self.main_path),
            "-e",
            str(self.base_dir / "error.log"),
            *extra,
        ]

    def check(self) -> None:
        """``nginx -t`` on the rendered configuration; raise with nginx's message when it fails."""
        done = subprocess.run(self._argv("-t"), capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise ServiceUnavailable(f"nginx -t rejected the configuration:\n{done.stderr}\n{self.site_path}")

    def start(self) -> None:
        if self._child is not None and self._child.running:
            return
        self.write_config()
        self.check()
        self._child = ServiceChild("nginx", self._argv(), self.log_path, cwd=self.base_dir)
        self._child.start()

        def ready() -> bool:
            assert self._child is not None
            if self._child.exited() is not None:
                raise ServiceUnavailable(f"nginx exited with {self._child.exited()}:\n{self.log()}")
            return port_open(self.port)

        if not wait_until(ready, timeout=START_TIMEOUT_SECONDS):
            self._child.kill()
            raise ServiceUnavailable(f"nginx did not listen on port {self.port}:\n{self.log()}")

    def stop(self) -> None:
        """Graceful stop (SIGQUIT: finish the requests it is serving)."""
        if self._child is not None:
            self._child.stop(signal.SIGQUIT, timeout=15)

    def close(self) -> None:
        try:
            if self._child is not None:
                self._child.stop(signal.SIGTERM, timeout=10)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def log(self, chars: int = 4000) -> str:
        text = self._child.log(chars) if self._child is not None else ""
        error_log = self.base_dir / "error.log"
        if error_log.exists():
            text += "\n--- error.log ---\n" + error_log.read_text(errors="replace")[-chars:]
        return text

    def access_log(self) -> str:
        path = self.base_dir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upstream_of(self, request_id: str) -> str | None:
        """The node (``HOST:PORT``) that answered the request with this ``X-Request-ID``, once logged.

        When nginx had to try several nodes, the last one is the one that answered.
        """
        for line in self.access_log().splitlines():
            if line.startswith(request_id + " ") and "upstream=" in line:
                return line.rsplit("upstream=", 1)[1].split(",")[-1].strip()
        return None

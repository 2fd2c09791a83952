"""Real services on loopback for tests: PostgreSQL, Redis and nginx from Debian's packages.

    tests.infra.postgres.PostgresServer   initdb + postgres as the `postgres` user, fsync off
    tests.infra.redis.RedisServer         redis-server without persistence
    tests.infra.nginx.NginxServer         nginx running deploy/nginx/attendance-live.conf
    tests.infra.fixtures                  the pytest fixtures (register with pytest_plugins)

Each starts on a free 127.0.0.1 port, can be stopped and started again on the
same port (for fault tests), and is killed at the end of the test session.
"""

from __future__ import annotations

from tests.infra._process import ServiceUnavailable, free_port
from tests.infra.nginx import NginxServer, render_site
from tests.infra.postgres import PostgresServer
from tests.infra.redis import RedisServer

__all__ = [
    "NginxServer",
    "PostgresServer",
    "RedisServer",
    "ServiceUnavailable",
    "free_port",
    "render_site",
]

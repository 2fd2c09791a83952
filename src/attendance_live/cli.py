"""``attendance-live serve | migrate | demo | token | watch | keys | lti``.

Bad configuration ends the command with one line naming the variable and the
fix, and exit status 2. A server that cannot start (its port is taken, the
database cannot be reached) ends with one line naming what and the fix, and
exit status 1; the traceback is logged at debug level (``LOG_LEVEL=debug``).
``serve`` binds its port before anything else, so that it fails before it
prints "ready" or any demo token.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import json
import logging
import os
import shlex
import socket
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from attendance_live import __version__
from attendance_live.config import ConfigError, Settings, ensure_secret, load_settings
from attendance_live.logs import configure_logging

__all__ = ["StartupError", "main"]

log = logging.getLogger("attendance_live")

T = TypeVar("T")


class StartupError(Exception):
    """The command cannot run; the message names what and the fix (one line, exit status 1)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attendance-live",
        description="Real-time attendance sessions over Socket.IO and HTTP.",
    )
    parser.add_argument("--version", action="version", version=f"attendance-live {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (HOST:PORT, default 127.0.0.1:4002)")
    serve.add_argument("--host", help="address to listen on (overrides HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides PORT)")
    serve.add_argument("--demo", action="store_true", help="create the demo course and serve /api/demo/users")

    commands.add_parser("migrate", help="apply database migrations (DATABASE_URL)")

    demo = commands.add_parser("demo", help="create the demo course and print its users' tokens")
    demo.add_argument("--json", action="store_true", help="print JSON for scripts")

    token = commands.add_parser("token", help="mint a token with the configured secret")
    token.add_argument("user_id", metavar="USER_ID")
    token.add_argument("--name", help="display name (default: the user id)")
    token.add_argument("--email")
    token.add_argument("--role", choices=["student", "teacher", "admin"], default="student")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")

    keys = commands.add_parser("keys", help="the server's own session-token signing keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_commands.add_parser(
        "rotate",
        help="add a new signing key; the old one verifies until its tokens expire "
        "(SESSION_TOKEN_MAX_SECONDS)",
    )
    keys_commands.add_parser("list", help="list the keys (kid, created, retires; no key material)")

    _lti_parser(commands)

    watch = commands.add_parser("watch", help="print a course's live events as they arrive")
    watch.add_argument("course_id", metavar="COURSE_ID")
    watch.add_argument("--token", help="JWT to connect with (default: ATTENDANCE_LIVE_TOKEN)")
    watch.add_argument("--url", help="server URL (default: http://HOST:PORT)")
    watch.add_argument("--json", action="store_true", help="print each event as one JSON line")
    watch.add_argument("--max-events", type=int, default=0, help="exit after this many events")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides: dict[str, Any] = {}
        if getattr(args, "host", None):
            overrides["host"] = args.host
        if getattr(args, "port", None) is not None:
            overrides["port"] = args.port
        settings = load_settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "token" or args.command == "demo" or getattr(args, "demo", False):
            problem = _cannot_mint(settings, "token" if args.command == "token" else "demo")
            if problem:
                print(problem, file=sys.stderr)
                return 2
        if args.command in ("serve", "demo", "token"):
            settings = ensure_secret(settings)
        handler = {
            "serve": _serve,
            "migrate": _migrate,
            "demo": _demo,
            "token": _token,
            "watch": _watch,
            "keys": _keys,
            "lti": _lti,
        }[args.command]
        return handler(settings, args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except StartupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _cannot_mint(settings: Settings, what: str) -> str | None:
    """Tokens can be minted only with the shared secret; otherwise say why not and what to do."""
    if settings.is_symmetric:
        return None
    doing = "mint a token" if what == "token" else "make the demo users' tokens"
    return (
        f"Cannot {doing}: JWT_ALGORITHM is {settings.jwt_algorithm}, so tokens come from your identity "
        "provider and this server holds no private key. Get a token from the provider, or unset "
        "JWT_ALGORITHM, JWT_PUBLIC_KEY and JWKS_URL to use local HS256 tokens."
    )


def _base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


async def _prepare(settings: Settings, *, seed: bool) -> None:
    """Bring the schema up to date (embedded SQLite) or check it is (PostgreSQL)."""
    from attendance_live.db.engine import Database
    from attendance_live.db.migrate import current_revision, head_revision, upgrade

    database = Database(settings.database_url)
    try:
        if settings.is_sqlite:
            await upgrade(database)
        else:
            current = await current_revision(database)
            if current != head_revision():
                raise ConfigError(
                    "DATABASE_URL",
                    f"points at a schema at revision {current or 'none'}, not {head_revision()}: "
                    "run `attendance-live migrate` first",
                )
        if seed:
            from attendance_live.demo import seed_demo
            from attendance_live.service.attendance import AttendanceService
            from attendance_live.service.events import EventBus

            await seed_demo(AttendanceService(database, EventBus()))
    finally:
        await database.dispose()


def _bind(settings: Settings) -> socket.socket:
    """The listening socket, bound now: a taken port fails before anything is printed."""
    where = f"{settings.host}:{settings.port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StartupError(
            f"Cannot listen on {where}: HOST {settings.host!r} does not resolve ({exc.strerror}); "
            "use an address such as 127.0.0.1 or 0.0.0.0 (--host or HOST)"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        log.debug("binding %s failed", where, exc_info=True)
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"Port {settings.port} on {settings.host} is already in use (another attendance-live?): "
                f"stop that process, or choose another port with --port or PORT"
            ) from None
        if exc.errno == errno.EACCES:
            raise StartupError(
                f"Not allowed to listen on port {settings.port}: ports below 1024 need privileges; "
                "choose a port above 1024 with --port or PORT"
            ) from None
        raise StartupError(
            f"Cannot listen on {where} ({exc.strerror}): use an address of this machine with --host or HOST"
        ) from None
    sock.set_inheritable(True)
    return sock


def _with_database(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a database that cannot be reached becomes one :class:`StartupError` line."""
    import asyncpg
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    try:
        return asyncio.run(work)
    except (OSError, TimeoutError, DBAPIError, asyncpg.PostgresError) as exc:
        log.debug("database connection failed", exc_info=True)
        url = make_url(settings.database_url)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        why = (reason[0] if reason else type(exc).__name__)[:200]
        if settings.is_sqlite:
            raise StartupError(
                f"Cannot open the SQLite database {url.database} ({why}): check that its directory "
                "exists and is writable, or set DATABASE_URL"
            ) from None
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        raise StartupError(
            f"Cannot reach PostgreSQL at {where} ({why}): check that the server is running and accepts "
            f"connections there, and DATABASE_URL's user, password and database name ({url.database})"
        ) from None


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from attendance_live.app import create_app

    listening = _bind(settings)
    try:
        _with_database(settings, _prepare(settings, seed=args.demo))
        if args.demo:
            _print_demo(settings, as_json=False)
        application = create_app(settings, demo=args.demo)  # a bad JWT_PUBLIC_KEY stops it here
    except BaseException:
        listening.close()
        raise

    class Server(uvicorn.Server):
        """On SIGTERM: stop accepting, close every Socket.IO transport, then drain."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:
                server.close()
            # Before uvicorn waits on open connections: a held long-poll would
            # otherwise keep shutdown waiting, and clients should move on now.
            await application.realtime.close()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        application.asgi,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=10,
        # The client address is ours to find (TRUSTED_PROXIES, api/client_address.py):
        # uvicorn's own X-Forwarded-For handling would trust any local peer.
        proxy_headers=False,
        **application.uvicorn_options(),
    )
    _tune_garbage_collector()
    log.info("listening on %s (Socket.IO at /socket.io/, API docs at /docs)", _base_url(settings))
    Server(config).run(sockets=[listening])
    return 0


def _tune_garbage_collector() -> None:
    """Keep cyclic-GC pauses out of broadcasts.

    Everything built at start-up (modules, the app) is moved out of the
    collector's reach, and the youngest generation is collected less often: with
    thousands of sockets a full collection walks millions of objects, and the
    benchmark saw such pauses double fan-out p99 (docs/performance.md); full
    collections come from ``realtime.collector``, paced by closed connections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from attendance_live.db.engine import Database
    from attendance_live.db.migrate import current_revision, upgrade

    async def run() -> str | None:
        database = Database(settings.database_url)
        try:
            await upgrade(database)
            return await current_revision(database)
        finally:
            await database.dispose()

    print(f"database schema is at revision {_with_database(settings, run())}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    _with_database(settings, _prepare(settings, seed=True))
    _print_demo(settings, as_json=args.json)
    return 0


def _print_demo(settings: Settings, *, as_json: bool) -> None:
    """The demo users with fresh tokens, and three curl lines that run a session."""
    from attendance_live.auth.keys import build_token_service
    from attendance_live.demo import demo_listing

    listing = demo_listing(build_token_service(settings))
    base = _base_url(settings)
    teacher = listing["teacher"]["token"]
    student = listing["students"][0]["token"]
    course = listing["course"]["id"]
    curl = [
        f"SESSION=$(curl -s -X POST {base}/api/courses/{course}/sessions "
        f"-H 'Authorization: Bearer {teacher}' -H 'Content-Type: application/json' "
        '-d \'{"topic": "Demo lecture"}\' '
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')",
        f"curl -s -X POST {base}/api/sessions/$SESSION/check-in -H 'Authorization: Bearer {student}'",
        f"curl -s -X POST {base}/api/sessions/$SESSION/end -H 'Authorization: Bearer {teacher}'",
    ]
    if as_json:
        print(json.dumps({**listing, "curl": curl}, indent=2, ensure_ascii=False))
        return
    print(f"Demo course {listing['course']['code']} ({course}) is ready at {base}.\n")
    print(f"Teacher  {listing['teacher']['name']:<14} {listing['teacher']['id']}\n  token: {teacher}\n")
    for s in listing["students"]:
        print(f"Student  {s['name']:<14} {s['id']} ({s['enrollment']})\n  token: {s['token']}\n")
    print("With the server running, start a session, check in, end it:\n")
    print("\n".join(curl))
    print(f"\nWatch it live:  {_command()} watch {course} --token {shlex.quote(student)}")
    print(f"Dashboard:      {base}/  (pick a demo user to sign in)\n", flush=True)


def _command() -> str:
    """This command as the user can type it again from here (the README never activates the venv)."""
    invoked = sys.argv[0] if sys.argv else ""
    if Path(invoked).name == "attendance-live" and os.access(invoked, os.X_OK):
        return shlex.quote(invoked)
    return f"{shlex.quote(sys.executable)} -m attendance_live"


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from attendance_live.auth.keys import build_token_service
    from attendance_live.service.attendance import validate_id
    from attendance_live.service.errors import InvalidInput

    try:
        validate_id(args.user_id, "USER_ID")
    except InvalidInput as exc:
        print(exc.message, file=sys.stderr)
        return 2
    tokens = build_token_service(settings)
    print(tokens.mint(args.user_id, name=args.name, role=args.role, email=args.email, ttl_seconds=args.ttl))
    return 0


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    from attendance_live.watch import watch

    token = args.token or (
        settings.attendance_live_token.get_secret_value() if settings.attendance_live_token else None
    )
    if not token:
        print("watch needs a token: pass --token or set ATTENDANCE_LIVE_TOKEN", file=sys.stderr)
        return 2
    return asyncio.run(
        watch(
            args.url or _base_url(settings),
            token,
            args.course_id,
            as_json=args.json,
            max_events=args.max_events,
        )
    )


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from attendance_live.auth.session_keys import list_keys, rotate_keys
    from attendance_live.db.engine import Database

    async def run() -> str:
        await _prepare(settings, seed=False)
        database = Database(settings.database_url)
        try:
            lines: list[str] = []
            if args.keys_command == "rotate":
                kid = await rotate_keys(database, max_ttl_seconds=settings.session_token_max_seconds)
                lines.append(f"new signing key {kid}; every node signs with it within a few seconds")
            for key in await list_keys(database):
                state = "signing" if key.signing else f"verifies until {key.retires_at:%Y-%m-%d %H:%M:%S}Z"
                lines.append(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M:%S}Z  {state}")
            if len(lines) == (1 if args.keys_command == "rotate" else 0):
                lines.append("no keys yet: `attendance-live serve` generates the first at its first start")
            return "\n".join(lines)
        finally:
            await database.dispose()

    print(_with_database(settings, run()))
    return 0


def _lti_parser(commands: Any) -> None:
    lti = commands.add_parser("lti", help="LTI 1.3 platforms (LMS) this tool accepts launches from")
    actions = lti.add_subparsers(dest="lti_command", required=True, metavar="ACTION")
    register = actions.add_parser(
        "register", help="register a platform, or add deployments to a registered one"
    )
    register.add_argument(
        "--issuer", required=True, help="the platform's issuer (iss), e.g. https://moodle.example.edu"
    )
    register.add_argument("--client-id", required=True, help="the client id the platform gave the tool")
    register.add_argument(
        "--deployment-id", required=True, action="append", help="a deployment id (repeat for several)"
    )
    register.add_argument("--auth-url", required=True, help="the platform's OIDC authentication request URL")
    register.add_argument("--token-url", required=True, help="the platform's OAuth 2 access token URL")
    register.add_argument("--jwks-url", required=True, help="the platform's public keyset (JWKS) URL")
    register.add_argument(
        "--frame-ancestors", help="origins allowed to frame the tool after a launch (default: the platform's)"
    )
    actions.add_parser("list", help="list the registered platforms and their deployments")
    remove = actions.add_parser("remove", help="remove a platform (or one of its deployments)")
    remove.add_argument("--issuer", required=True)
    remove.add_argument("--client-id", help="which registration, when an issuer has several")
    remove.add_argument("--deployment-id", help="remove only this deployment")
    config = actions.add_parser("tool-config", help="print what the LMS administrator pastes (PUBLIC_URL)")
    config.add_argument("--json", action="store_true", help="print JSON")


def _lti(settings: Settings, args: argparse.Namespace) -> int:
    from attendance_live.db.engine import Database
    from attendance_live.lti.registry import (
        RegistrationError,
        list_platforms,
        register_platform,
        remove_platform,
        tool_config,
    )

    if args.lti_command == "tool-config":
        config = tool_config(settings.issuer_url)
        if args.json:
            print(json.dumps(config, indent=2))
        else:
            print(f"Login URL (OIDC initiation):  {config['oidc_initiation_url']}")
            print(f"Launch / redirect URL:        {config['target_link_uri']}")
            print(f"Public keyset (JWKS) URL:     {config['public_jwk_url']}")
            print("Scopes:")
            for scope in config["scopes"]:
                print(f"  {scope}")
            if settings.public_url is None:
                print("(PUBLIC_URL is not set, so these use the listening address; set PUBLIC_URL)")
        return 0

    async def run() -> str:
        await _prepare(settings, seed=False)
        database = Database(settings.database_url)
        try:
            if args.lti_command == "register":
                info = await register_platform(
                    database,
                    issuer=args.issuer,
                    client_id=args.client_id,
                    deployment_ids=args.deployment_id,
                    auth_url=args.auth_url,
                    token_url=args.token_url,
                    jwks_url=args.jwks_url,
                    frame_ancestors=args.frame_ancestors,
                )
                deployments = ", ".join(info.deployments)
                return f"registered {info.issuer} (client {info.client_id}), deployments: {deployments}"
            if args.lti_command == "remove":
                return await remove_platform(
                    database, issuer=args.issuer, client_id=args.client_id, deployment_id=args.deployment_id
                )
            lines = []
            for p in await list_platforms(database):
                lines.append(
                    f"{p.issuer}  client {p.client_id}  deployments {', '.join(p.deployments) or '-'}"
                )
                lines.append(f"  auth {p.auth_url}\n  token {p.token_url}\n  jwks {p.jwks_url}")
                lines.append(f"  frame-ancestors {p.framing}")
            return "\n".join(lines) or "no platform registered; see `attendance-live lti register --help`"
        finally:
            await database.dispose()

    try:
        print(_with_database(settings, run()))
    except RegistrationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0

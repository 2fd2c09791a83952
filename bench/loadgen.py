"""A lean Socket.IO v4 / Engine.IO 4 load generator over raw websockets.

One asyncio (uvloop) process holds thousands of connections, each a small
``asyncio.Protocol`` that speaks just enough of RFC 6455, Engine.IO 4 and
Socket.IO v4 to connect with ``auth: {token}``, subscribe to a course, answer
pings and timestamp the events it receives. No client library object per
connection: the per-message cost is a few dictionary look-ups, so the generator
stays cheap next to the server it measures on the same two cores.

It runs as a *worker* (``python loadgen.py worker``) driven by JSON lines on
stdin/stdout; ``LoadGen`` in this module spawns and drives one or more workers
and merges what they report. Times are ``time.monotonic()`` (CLOCK_MONOTONIC),
which is the same clock in every process on the machine, so the driver can
timestamp an HTTP trigger and the workers the arrivals.

Modes of a connection:

* ``sio``   - websocket upgrade, Engine.IO open, Socket.IO CONNECT with auth,
              ``subscribeToCourse``; "ready" when ``activeSessionsData`` arrives.
* ``plain`` - websocket upgrade only (the floor server); "ready" when the first
              ``42[...]`` text frame (the floor's pre-encoded snapshot) arrives.

A ready connection can be *stalled* (``stall``): it stops reading its socket
(``transport.pause_reading()``) but stays connected and subscribed, as a client
on a dead link would; stalled connections are not counted as recipients.

Client frames are masked with the all-zero key (valid per RFC 6455, and it
makes masking free); permessage-deflate is never offered, so no server
compresses.
"""

# The driver hands each command its time limit as data, hence `timeout` parameters:
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import resource
import socket
import struct
import sys
import time
from typing import Any

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(data: bytes | str) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - the venv has orjson

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def _loads(data: bytes | str) -> Any:
        return json.loads(data)


monotonic = time.monotonic
WORKER_PATH = os.path.abspath(__file__)

# Connections per source address when they are spread (``source_net``): well inside the
# ephemeral port range (net.ipv4.ip_local_port_range, 32768-60999 by default).
PER_SOURCE_ADDRESS = 16384

WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # servers do not care that it repeats
ZERO_MASK = b"\x00\x00\x00\x00"


def raise_nofile(limit: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < limit:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(hard, limit)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (FIN set) with the all-zero mask."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return head + ZERO_MASK + payload


PONG_EIO = ws_frame(b"3")


class Worker:
    """Holds the connections of one process and the per-event arrival log."""

    def __init__(self) -> None:
        self.conns: dict[int, Conn] = {}  # index -> ready connection
        self.next_index = 0
        self.tokensets: dict[str, list[str]] = {}
        # event name (bytes) -> {conn index: arrival time}; only armed events
        self.watch: dict[bytes, dict[int, float]] = {}
        self.watch_target: dict[bytes, int] = {}
        self.watch_done: dict[bytes, asyncio.Event] = {}
        # event name -> how many times an armed event reached a connection that already had it
        self.watch_dups: dict[bytes, int] = {}
        self.keep_last: dict[bytes, bytes] = {}  # event -> last payload seen
        self.keep: set[bytes] = set()
        self.pings = 0
        self.frames = 0
        self.errors: dict[str, int] = {}
        # The last ``open``: (index of its first connection, its connections' count).
        self.last_open = (0, 0)
        # Acked emits (``acked``): (conn index, ack id) -> sent at; and (sent, answered, status).
        self.pending_acks: dict[tuple[int, int], float] = {}
        self.acked: list[tuple[float, float, str]] = []
        self.acks_done = asyncio.Event()
        self.sending = False  # the schedule is still being sent: no ack can be the last one yet

    # -- called by connections -------------------------------------------------
    def on_event(self, conn: Conn, name: bytes, payload: bytes, now: float) -> None:
        d = self.watch.get(name)
        if d is not None:
            if conn.index not in d:
                d[conn.index] = now
                if len(d) >= self.watch_target[name]:
                    self.watch_done[name].set()
            else:
                self.watch_dups[name] = self.watch_dups.get(name, 0) + 1
        if name in self.keep:
            self.keep_last[name] = payload

    def error(self, message: str) -> None:
        self.errors[message] = self.errors.get(message, 0) + 1

    def on_ack(self, conn: Conn, packet: bytes, now: float) -> None:
        """A Socket.IO ACK (``43<id>[answer]``) of an ``acked`` emit: its status is ``ok`` or the
        answer's ``reason``."""
        k = packet.find(b"[", 2)
        if k < 0 or not packet[2:k].isdigit():
            return
        sent = self.pending_acks.pop((conn.index, int(packet[2:k])), None)
        if sent is None:
            return
        try:
            answer = _loads(packet[k:])[0]
            status = "ok" if answer.get("ok") is True else str(answer.get("reason"))
        except Exception:
            status = "unreadable"
        self.acked.append((sent, now, status))
        if not self.pending_acks and not self.sending:
            self.acks_done.set()


class Conn(asyncio.Protocol):
    __slots__ = (
        "_req",
        "ack_id",
        "auth_frame",
        "buf",
        "closed",
        "frag",
        "index",
        "mode",
        "ready",
        "stalled",
        "state",
        "sub_frame",
        "t_ready",
        "tag",
        "transport",
        "upgraded",
        "w",
    )

    # states
    HTTP, EIO_OPEN, SIO_CONNECT, SUBSCRIBING, READY = range(5)

    def __init__(
        self,
        w: Worker,
        index: int,
        mode: str,
        host_header: bytes,
        path: bytes,
        auth_frame: bytes | None,
        sub_frame: bytes | None,
        tag: str = "",
    ) -> None:
        self.w = w
        self.tag = tag
        self.index = index
        self.mode = mode
        self.auth_frame = auth_frame
        self.sub_frame = sub_frame
        self.transport: asyncio.Transport | None = None
        self.state = self.HTTP
        self.buf = b""
        self.frag = b""
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[float] = loop.create_future()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.t_ready = 0.0
        self.closed = False
        self.stalled = False
        self.ack_id = 0
        self._req = (
            b"GET "
            + path
            + b" HTTP/1.1\r\nHost: "
            + host_header
            + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
            + WS_KEY
            + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._req)  # type: ignore[attr-defined]
        self._req = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed in state {self.state}"))
        if not self.upgraded.done():
            self.upgraded.set_result(None)
        self.transport = None

    def _fail(self, message: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_result(None)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(message))
        if self.transport is not None:
            self.transport.abort()

    def _set_ready(self, now: float) -> None:
        self.state = self.READY
        self.t_ready = now
        if not self.ready.done():
            self.ready.set_result(now)

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        if self.state == self.HTTP:
            data = self.buf + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self._fail("upgrade refused: " + data[: data.find(b"\r\n")].decode("latin-1"))
                return
            self.buf = b""
            data = data[end + 4 :]
            self.upgraded.set_result(None)
            if self.mode == "sio":
                self.state = self.EIO_OPEN
            else:
                self.state = self.SUBSCRIBING  # plain: the first 42 frame is "ready"
            if not data:
                return
        buf = self.buf + data if self.buf else data
        n = len(buf)
        i = 0
        while n - i >= 2:
            b0 = buf[i]
            ln = buf[i + 1] & 0x7F
            h = 2
            if ln == 126:
                if n - i < 4:
                    break
                ln = (buf[i + 2] << 8) | buf[i + 3]
                h = 4
            elif ln == 127:
                if n - i < 10:
                    break
                ln = int.from_bytes(buf[i + 2 : i + 10], "big")
                h = 10
            end = i + h + ln
            if end > n:
                break
            payload = buf[i + h : end]
            i = end
            op = b0 & 0x0F
            if not b0 & 0x80:  # a fragment, not the last
                self.frag += payload
                continue
            if op == 0:  # last continuation
                payload = self.frag + payload
                self.frag = b""
                op = 1
            if op == 1 or op == 2:
                self.w.frames += 1
                self.on_packet(payload, now)
            elif op == 9:
                self.transport.write(ws_frame(payload, 0xA))  # type: ignore[union-attr]
            elif op == 8:
                self._fail("closed by server")
                return
        self.buf = buf[i:] if i < n else b""

    def on_packet(self, p: bytes, now: float) -> None:
        c = p[0]
        if c == 0x34:  # '4' Engine.IO message
            t = p[1]
            if t == 0x32:  # '2' Socket.IO EVENT
                q = p.index(b'"', 4)
                name = p[4:q]
                if self.state == self.SUBSCRIBING:
                    if name == b"activeSessionsData" or self.mode != "sio":
                        self._set_ready(now)
                        return
                    if name == b"activeSessionsError":
                        try:
                            err = _loads(p[2:])[1]
                            msg = f"{err.get('code')}: {err.get('message')}"
                        except Exception:
                            msg = p[2:120].decode("utf-8", "replace")
                        self._fail("activeSessionsError " + msg)
                        return
                self.w.on_event(self, name, p, now)
            elif t == 0x33:  # '3' Socket.IO ACK
                self.w.on_ack(self, p, now)
            elif t == 0x30:  # '0' Socket.IO CONNECT accepted
                if self.state == self.SIO_CONNECT:
                    if self.sub_frame is None:
                        self._set_ready(now)
                    else:
                        self.state = self.SUBSCRIBING
                        self.transport.write(self.sub_frame)  # type: ignore[union-attr]
            elif t == 0x34:  # '4' CONNECT_ERROR
                try:
                    msg = _loads(p[2:]).get("message", "?")
                except Exception:
                    msg = p[2:80].decode("utf-8", "replace")
                self._fail("connect_error: " + str(msg))
            elif t == 0x31:  # '1' DISCONNECT
                self._fail("disconnected by server")
        elif c == 0x32:  # '2' ping
            self.w.pings += 1
            self.transport.write(PONG_EIO)  # type: ignore[union-attr]
        elif c == 0x30:  # '0' Engine.IO open
            if self.state == self.EIO_OPEN:
                self.state = self.SIO_CONNECT
                self.transport.write(self.auth_frame)  # type: ignore[union-attr, arg-type]
        elif c == 0x31:  # '1' Engine.IO close
            self._fail("engine.io close")

    def stall(self) -> None:
        """Stop reading the socket altogether: the server's writes pile up in the kernel's
        buffers, then in the server's own (a client on a dead link, or a frozen tab)."""
        if self.transport is not None and not self.stalled:
            self.transport.pause_reading()
            self.stalled = True

    def abort(self) -> None:
        t = self.transport
        if t is not None:
            sock = t.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # RST instead of FIN: no TIME_WAIT pile-up across rounds
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()


def mint_tokens(
    secret: str, prefix: str, start: int, count: int, ttl: int, role: str = "student"
) -> list[str]:
    import jwt  # PyJWT

    exp = int(time.time()) + ttl
    return [
        jwt.encode(
            {"sub": f"{prefix}{i}", "name": f"Bench User {i}", "role": role, "exp": exp},
            secret,
            algorithm="HS256",
        )
        for i in range(start, start + count)
    ]


class WorkerServer:
    """The command loop of a worker process (JSON lines on stdin/stdout)."""

    def __init__(self) -> None:
        self.w = Worker()

    async def cmd_tokens(
        self, secret: str, prefix: str, start: int, count: int, ttl: int = 7200, name: str = "main"
    ) -> dict[str, Any]:
        self.w.tokensets[name] = mint_tokens(secret, prefix, start, count, ttl)
        return {"count": len(self.w.tokensets[name])}

    async def cmd_open(
        self,
        host: str,
        port: int,
        mode: str = "sio",
        course_id: str | None = None,
        count: int | None = None,
        concurrency: int = 500,
        gate: str = "upgrade",
        timeout: float = 120.0,
        tokens: str = "main",
        tag: str = "",
        more: list[dict[str, Any]] | None = None,
        source_net: int | None = None,
    ) -> dict[str, Any]:
        """Open connections (one per token in sio mode) and wait until each is ready.

        gate="upgrade": at most `concurrency` connections between TCP connect and
        the websocket upgrade (keeps the accept queue below any listen backlog);
        the Socket.IO handshake and subscribe then run unthrottled - a storm.
        gate="all": at most `concurrency` connections anywhere before ready - a
        gentle ramp.
        more: further targets ({port, tokens, tag} or {port, count, tag}) opened
        in the same ramp, interleaved with the first (several nodes at once).
        source_net: connect from 127.<64 + source_net>.<k>.1 (k changing every
        PER_SOURCE_ADDRESS connections) instead of the kernel's choice of
        127.0.0.1: one source address has only the ephemeral port range
        (about 28,000 ports) towards one server port, too few for N=50,000.
        """
        loop = asyncio.get_running_loop()
        w = self.w
        path = b"/socket.io/?EIO=4&transport=websocket" if mode == "sio" else b"/ws"
        sub = None
        if course_id is not None:
            sub = ws_frame(b'42["subscribeToCourse",' + _dumps({"course_id": course_id}) + b"]")
        per_target: list[list[tuple[int, bytes, str | None, str]]] = []
        for t in [{"port": port, "tokens": tokens, "tag": tag, "count": count}, *(more or [])]:
            hh = f"{host}:{t['port']}".encode()
            if mode == "sio":
                toks: list[str | None] = list(w.tokensets.get(t.get("tokens") or "main", []))
            else:
                toks = [None] * int(t.get("count") or 0)
            per_target.append([(int(t["port"]), hh, tok, str(t.get("tag") or "")) for tok in toks])
        plan = [item for group in itertools.zip_longest(*per_target) for item in group if item is not None]
        n = len(plan)
        sem = asyncio.Semaphore(concurrency)
        base = w.next_index
        w.next_index += n
        w.last_open = (base, n)
        gc.collect()
        errors: dict[str, int] = {}
        times: list[float] = []
        last_by_tag: dict[str, tuple[int, float]] = {}  # tag -> (ready connections, last ready at)

        def ready(conn: Conn, at: float) -> None:
            times.append(at)
            w.conns[conn.index] = conn
            count, last = last_by_tag.get(conn.tag, (0, 0.0))
            last_by_tag[conn.tag] = (count + 1, max(last, at))

        async def one(i: int) -> None:
            tport, hh, tok, ttag = plan[i]
            auth = ws_frame(b"40" + _dumps({"token": tok})) if mode == "sio" else None
            conn = Conn(w, base + i, mode, hh, path, auth, sub, ttag)
            local = None
            if source_net is not None:
                local = (f"127.{64 + source_net % 128}.{(conn.index // PER_SOURCE_ADDRESS) % 256}.1", 0)
            try:
                async with sem:
                    await loop.create_connection(lambda: conn, host, tport, local_addr=local)
                    if gate == "all":
                        ready(conn, await conn.ready)
                        return
                    await conn.upgraded
                ready(conn, await conn.ready)
            except Exception as exc:
                msg = str(exc) or type(exc).__name__
                errors[msg[:120]] = errors.get(msg[:120], 0) + 1
                conn.abort()

        t0 = monotonic()
        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            errors["timeout"] = errors.get("timeout", 0) + len(pending)
        t1 = monotonic()
        gc.collect()
        return {
            "t0": t0,
            "t1": t1,
            "times": times,
            "opened": len(times),
            "errors": errors,
            "by_tag": {tag: list(v) for tag, v in last_by_tag.items()},
        }

    async def cmd_arm(self, event: str, keep: bool = False) -> dict[str, Any]:
        name = event.encode()
        self.w.watch[name] = {}
        self.w.watch_dups[name] = 0
        live = sum(1 for c in self.w.conns.values() if not c.closed and not c.stalled)
        self.w.watch_target[name] = live
        self.w.watch_done[name] = asyncio.Event()
        if live == 0:
            self.w.watch_done[name].set()
        if keep:
            self.w.keep.add(name)
            self.w.keep_last.pop(name, None)
        return {"armed": event, "target": live}

    async def cmd_wait(
        self, event: str, timeout: float = 30.0, times: bool = True, grace: float = 0.0
    ) -> dict[str, Any]:
        """Wait until every armed connection has ``event`` (or ``timeout``), then ``grace`` seconds
        more, still counting arrivals: ``duplicates`` is how many times the event reached a
        connection that already had it (exactly once means 0)."""
        name = event.encode()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.w.watch_done[name].wait(), timeout)
        if grace > 0:
            await asyncio.sleep(grace)
        d = self.w.watch.pop(name, {})
        target = self.w.watch_target.pop(name, 0)
        self.w.watch_done.pop(name, None)
        dups = self.w.watch_dups.pop(name, 0)
        out: dict[str, Any] = {"received": len(d), "target": target, "duplicates": dups}
        by_tag: dict[str, int] = {}
        conns = self.w.conns
        for idx in d:
            c = conns.get(idx)
            t = c.tag if c is not None else "?"
            by_tag[t] = by_tag.get(t, 0) + 1
        out["by_tag"] = by_tag
        live_by_tag: dict[str, int] = {}  # connections still open now, per tag (a closed one is a miss)
        for c in conns.values():
            if not c.closed and not c.stalled:
                live_by_tag[c.tag] = live_by_tag.get(c.tag, 0) + 1
        out["live_by_tag"] = live_by_tag
        if times:
            out["times"] = list(d.values())
        if name in self.w.keep:
            last = self.w.keep_last.get(name)
            out["last"] = last.decode() if last else None
            self.w.keep.discard(name)
        return out

    async def cmd_acked(
        self,
        event: str,
        payload: dict[str, Any],
        start: int,
        total: int,
        dup: int,
        at: float,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Each connection of the last ``open`` emits ``event`` with ``payload`` and an ack id, on
        its own schedule: the connection of student ``s`` (this worker's ``start`` + its position in
        the open) at ``at + s / total`` (monotonic), and twice at that instant when ``s < dup``;
        the latency is the time to its ack. Unanswered within ``timeout``: status ``unanswered``;
        a connection that closed before its turn: ``closed``."""
        w = self.w
        base, n = w.last_open
        plan: list[tuple[float, Conn]] = []
        for index in range(base, base + n):
            conn = w.conns.get(index)
            if conn is None:
                continue
            student = start + index - base
            for _ in range(2 if student < dup else 1):
                plan.append((at + student / total, conn))
        plan.sort(key=lambda item: item[0])
        w.pending_acks.clear()
        w.acked = []
        w.acks_done = asyncio.Event()
        w.sending = True
        head = b"42"
        body = b'["' + event.encode() + b'",' + _dumps(payload) + b"]"
        closed = 0
        for when, conn in plan:
            delay = when - monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            if conn.closed or conn.transport is None:
                closed += 1
                continue
            conn.ack_id += 1
            w.pending_acks[(conn.index, conn.ack_id)] = monotonic()
            conn.transport.write(ws_frame(head + str(conn.ack_id).encode() + body))
        w.sending = False
        if w.pending_acks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.acks_done.wait(), timeout)
        now = monotonic()
        results = [[(t1 - t0) * 1000, status] for t0, t1, status in w.acked]
        results += [[(now - t0) * 1000, "unanswered"] for t0 in w.pending_acks.values()]
        results += [[0.0, "closed"]] * closed
        w.pending_acks.clear()
        return {"results": results, "t_end": now}

    async def cmd_last(self, event: str) -> dict[str, Any]:
        last = self.w.keep_last.get(event.encode())
        return {"last": last.decode() if last else None}

    async def cmd_stall(self, fraction: float) -> dict[str, Any]:
        """Make every (1/fraction)-th ready connection stop reading; they stay connected and
        subscribed, and are no longer counted as recipients by ``arm``."""
        live = [c for _, c in sorted(self.w.conns.items()) if not c.closed and not c.stalled]
        step = max(1, round(1 / fraction)) if fraction > 0 else 0
        chosen = live[step // 2 :: step] if step else []
        for c in chosen:
            c.stall()
        return {"stalled": len(chosen), "of": len(live)}

    async def cmd_close(self) -> dict[str, Any]:
        n = 0
        for c in self.w.conns.values():
            if not c.closed:
                c.abort()
                n += 1
        self.w.conns = {}
        await asyncio.sleep(0.05)
        gc.collect()
        return {"closed": n}

    async def cmd_stats(self) -> dict[str, Any]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "cpu": ru.ru_utime + ru.ru_stime,
            "maxrss_kib": ru.ru_maxrss,
            "conns": sum(1 for c in self.w.conns.values() if not c.closed),
            "stalled": sum(1 for c in self.w.conns.values() if c.stalled and not c.closed),
            "pings": self.w.pings,
            "frames": self.w.frames,
            "errors": self.w.errors,
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 26)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        out = sys.stdout.buffer
        while True:
            line = await reader.readline()
            if not line:
                break
            req = _loads(line)
            cmd = req.pop("cmd")
            rid = req.pop("id", None)
            if cmd == "exit":
                await self.cmd_close()
                out.write(_dumps({"id": rid, "ok": True}) + b"\n")
                out.flush()
                break
            try:
                res = await getattr(self, "cmd_" + cmd)(**req)
                reply = {"id": rid, "ok": True, **res}
            except Exception as exc:
                reply = {"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out.write(_dumps(reply) + b"\n")
            out.flush()


def worker_main() -> None:
    raise_nofile()
    gc.disable()  # collected explicitly between phases: no generator GC pauses mid-measurement
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(WorkerServer().serve())


# ------------------------------------------------------------------ driver side
class LoadGen:
    """Spawns `procs` worker processes and spreads connections over them."""

    def __init__(self, procs: int = 1, python: str = sys.executable) -> None:
        self.procs = procs
        self.python = python
        self.workers: list[asyncio.subprocess.Process] = []
        self._ids = 0

    async def start(self) -> None:
        for _ in range(self.procs):
            p = await asyncio.create_subprocess_exec(
                self.python,
                WORKER_PATH,
                "worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 26,
            )
            self.workers.append(p)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.workers]

    async def _call(self, p: asyncio.subprocess.Process, cmd: str, **kw: Any) -> dict[str, Any]:
        self._ids += 1
        assert p.stdin is not None
        assert p.stdout is not None
        p.stdin.write(_dumps({"cmd": cmd, "id": self._ids, **kw}) + b"\n")
        await p.stdin.drain()
        line = await p.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator worker {p.pid} died")
        res: dict[str, Any] = _loads(line)
        if not res.get("ok"):
            raise RuntimeError(f"worker {p.pid}: {cmd}: {res.get('error')}")
        return res

    async def all(
        self, cmd: str, per_worker: list[dict[str, Any]] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(
                    self._call(p, cmd, **kw, **(per_worker[i] if per_worker else {}))
                    for i, p in enumerate(self.workers)
                )
            )
        )

    def split(self, start: int, count: int) -> list[dict[str, int]]:
        base, extra = divmod(count, self.procs)
        out, s = [], start
        for i in range(self.procs):
            c = base + (1 if i < extra else 0)
            out.append({"start": s, "count": c})
            s += c
        return out

    async def tokens(
        self, secret: str, prefix: str, start: int, count: int, ttl: int = 7200, name: str = "main"
    ) -> None:
        await self.all("tokens", self.split(start, count), secret=secret, prefix=prefix, ttl=ttl, name=name)

    async def open(self, spread_sources: bool = False, **kw: Any) -> dict[str, Any]:
        per: list[dict[str, Any]] | None = None
        if kw.get("mode") == "plain":
            per = [{"count": s["count"]} for s in self.split(0, kw.pop("count"))]
        if spread_sources:  # each worker its own source addresses
            per = [{**(per[i] if per else {}), "source_net": i} for i in range(self.procs)]
        if "concurrency" in kw:
            kw["concurrency"] = max(1, kw["concurrency"] // self.procs)
        res = await self.all("open", per, **kw)
        errors: dict[str, int] = {}
        for r in res:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        by_tag: dict[str, list[float]] = {}  # tag -> [ready connections, last ready at]
        for r in res:
            for tag, (count, last) in r["by_tag"].items():
                have = by_tag.setdefault(tag, [0, 0.0])
                have[0] += count
                have[1] = max(have[1], last)
        return {
            "t0": min(r["t0"] for r in res),
            "t1": max(r["t1"] for r in res),
            "times": [t for r in res for t in r["times"]],
            "opened": sum(r["opened"] for r in res),
            "errors": errors,
            "by_tag": by_tag,
        }

    async def arm(self, event: str, keep: bool = False) -> int:
        return sum(r["target"] for r in await self.all("arm", event=event, keep=keep))

    async def wait(
        self, event: str, timeout: float = 30.0, times: bool = True, grace: float = 0.0
    ) -> dict[str, Any]:
        res = await self.all("wait", event=event, timeout=timeout, times=times, grace=grace)
        out: dict[str, Any] = {
            "received": sum(r["received"] for r in res),
            "target": sum(r["target"] for r in res),
            "duplicates": sum(r["duplicates"] for r in res),
            "times": [t for r in res for t in r.get("times", [])],
        }
        by_tag: dict[str, int] = {}
        for r in res:
            for k, v in r["by_tag"].items():
                by_tag[k] = by_tag.get(k, 0) + v
        out["by_tag"] = by_tag
        live_by_tag: dict[str, int] = {}
        for r in res:
            for k, v in r["live_by_tag"].items():
                live_by_tag[k] = live_by_tag.get(k, 0) + v
        out["live_by_tag"] = live_by_tag
        lasts = [r.get("last") for r in res if r.get("last")]
        out["last"] = lasts[-1] if lasts else None
        return out

    async def acked(
        self, event: str, payload: dict[str, Any], total: int, dup: int, at: float, timeout: float = 30.0
    ) -> tuple[list[tuple[float, str]], float]:
        """``cmd_acked`` on every worker (their connections as ``open`` split the tokens ``0..total``):
        every (latency in ms, status), and when the last worker finished (monotonic)."""
        res = await self.all(
            "acked",
            [{"start": part["start"]} for part in self.split(0, total)],
            event=event,
            payload=payload,
            total=total,
            dup=dup,
            at=at,
            timeout=timeout,
        )
        return [(float(ms), str(status)) for r in res for ms, status in r["results"]], max(
            r["t_end"] for r in res
        )

    async def last(self, event: str) -> str | None:
        lasts = [r["last"] for r in await self.all("last", event=event) if r["last"]]
        return lasts[-1] if lasts else None

    async def stall(self, fraction: float) -> tuple[int, int]:
        """Stall ``fraction`` of the ready connections of every worker: (stalled, of)."""
        res = await self.all("stall", fraction=fraction)
        return sum(r["stalled"] for r in res), sum(r["of"] for r in res)

    async def close(self) -> int:
        return sum(r["closed"] for r in await self.all("close"))

    async def stats(self) -> dict[str, Any]:
        res = await self.all("stats")
        return {
            "cpu": sum(r["cpu"] for r in res),
            "maxrss_kib": max(r["maxrss_kib"] for r in res),
            "maxrss_kib_total": sum(r["maxrss_kib"] for r in res),
            "conns": sum(r["conns"] for r in res),
            "pings": sum(r["pings"] for r in res),
        }

    async def stop(self) -> None:
        for p in self.workers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._call(p, "exit"), 10)
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
            await p.wait()
        self.workers = []


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker_main()
    else:
        print(__doc__)
        print("usage: run bench/run.py; this module is its load generator (python loadgen.py worker)")

"""Signed webhooks (Standard Webhooks): endpoints, deliveries from the outbox, retries, resend.

How an event reaches an endpoint, and why none is lost:

1. A change commits its outbox rows (``service.outbox``) in its own transaction.
2. ``Webhooks.enqueue`` (every node, woken by its own commits and by a poll) reads the rows after
   the ``webhooks`` cursor (``term_cursors``) and, in one transaction, inserts one
   ``webhook_deliveries`` row per matching endpoint and moves the cursor with a conditional update:
   two nodes reading the same rows cannot both commit, so each row is enqueued once. A row is
   never lost across a restart: the cursor only moves with the deliveries it made.
3. ``Webhooks.send_due`` claims the first undelivered delivery of each line (one endpoint and one
   course: deliveries of a line go out in order, a later one waits for the one before it) with a
   conditional update that sets a lease, signs it (``standardwebhooks``: ``webhook-id``,
   ``webhook-timestamp``, ``webhook-signature``) and POSTs it with a short timeout, outside any
   request. A 2xx marks it delivered; anything else schedules the next attempt (``RETRY_SCHEDULE``:
   more than 24 h in all) and, after the last, marks it failed so the line moves on. An administrator
   can resend any delivery.

Endpoints must resolve to public addresses (SSRF): loopback, private, link-local and other
non-global addresses are refused unless ``WEBHOOK_ALLOWED_NETWORKS`` lists them; the check runs when
an endpoint is registered, again before every attempt, and in the HTTP client's resolver
(``GuardedResolver``), so the connection goes only to an address that passed it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp
import orjson
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection
from standardwebhooks.webhooks import Webhook

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import Course, OutboxEvent
from attendance_live.db.term_models import TermCursor, WebhookDelivery, WebhookEndpoint
from attendance_live.networks import IPNetwork
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound
from attendance_live.service.webhook_targets import GuardedResolver, check_target
from attendance_live.service.webhook_views import (
    EVENT_TYPES,
    DeliveryView,
    EndpointCreated,
    EndpointView,
    EventType,
    delivery_view,
    endpoint_view,
    webhook_event,
)
from attendance_live.timeutil import Clock, iso_z, utcnow

__all__ = [
    "CURSOR",
    "ENQUEUE_BATCH",
    "ERROR_CHARS",
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "SEND_BATCH",
    "Webhooks",
]

log = logging.getLogger(__name__)

CURSOR: Final = "webhooks"
# The waits after each failed attempt (the Standard Webhooks recommendation): 27 h 35 min in all.
RETRY_SCHEDULE: Final[tuple[timedelta, ...]] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS: Final = len(RETRY_SCHEDULE) + 1
# Outbox rows read per enqueue transaction, and deliveries sent per pass.
ENQUEUE_BATCH: Final = 500
SEND_BATCH: Final = 50
# The longest error text kept per delivery.
ERROR_CHARS: Final = 500


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_secret(secret: str) -> str:
    try:
        Webhook(secret)
    except Exception:
        raise InvalidInput(
            "secret is not a Standard Webhooks secret; use whsec_ followed by base64 of 24 to 64 random "
            "bytes, or omit it to have one generated"
        ) from None
    raw = base64.b64decode(secret.removeprefix("whsec_") + "==")
    if not 24 <= len(raw) <= 64:
        raise InvalidInput(f"secret holds {len(raw)} bytes; use 24 to 64 random bytes (base64 after whsec_)")
    return secret


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    url: str
    secret: str
    message_id: str
    payload: str
    attempts: int  # including this one


class Webhooks:
    """Endpoints (administrators), the enqueuer and the sender; see the module docstring."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        allowed_networks: Sequence[IPNetwork] = (),
        timeout_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.clock = clock
        self.allowed_networks = tuple(allowed_networks)
        self.timeout_seconds = timeout_seconds
        self._http: aiohttp.ClientSession | None = None
        #: Whether webhooks are set up here (an endpoint was ever registered, or a delivery is
        #: pending), as the last pass found. While not, a commit does not wake the sender: three
        #: queries after every commit for nothing (the periodic pass still looks).
        self.in_use = True

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------ endpoints

    @staticmethod
    def _require_admin(actor: Identity) -> None:
        if not actor.is_admin:
            raise Forbidden("Only administrators manage webhooks; ask one to register the endpoint")

    async def create_endpoint(
        self,
        actor: Identity,
        *,
        url: str,
        event_types: Sequence[EventType],
        course_id: str | None = None,
        secret: str | None = None,
        description: str | None = None,
    ) -> EndpointCreated:
        self._require_admin(actor)
        if not event_types:
            raise InvalidInput(f"event_types is empty; list at least one of {', '.join(EVENT_TYPES)}")
        await check_target(url, self.allowed_networks)
        secret = _check_secret(secret) if secret is not None else _new_secret()
        now = self.clock()
        row = WebhookEndpoint(
            id=uuid.uuid4().hex,
            url=url,
            secret=secret,
            course_id=course_id,
            event_types=orjson.dumps(sorted(set(event_types))).decode(),
            description=description,
            created_by=actor.user_id,
            created_at=now,
        )
        async with self.database.write() as db:
            if course_id is not None and await db.get(Course, course_id) is None:
                raise NotFound(f"Course {course_id!r} not found; register a global endpoint or fix the id")
            # The cursor starts at the stream's end the first time: no history is sent.
            if await db.get(TermCursor, CURSOR) is None:
                last = (await db.execute(select(func.max(OutboxEvent.id)))).scalar() or 0
                await db.execute(
                    self.database.upsert(
                        TermCursor, {"name": CURSOR, "position": last}, key=[TermCursor.name]
                    )
                )
            db.add(row)
        return EndpointCreated(**endpoint_view(row).model_dump(), secret=secret)

    async def list_endpoints(self, actor: Identity) -> list[EndpointView]:
        self._require_admin(actor)
        async with self.database.read() as db:
            rows = (await db.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at))).scalars()
            return [endpoint_view(r) for r in rows]

    async def delete_endpoint(self, actor: Identity, endpoint_id: str) -> None:
        self._require_admin(actor)
        async with self.database.write() as db:
            row = await db.get(WebhookEndpoint, endpoint_id)
            if row is None:
                raise NotFound(
                    f"Webhook endpoint {endpoint_id!r} not found; list them with GET /api/webhooks"
                )
            await db.delete(row)

    # ------------------------------------------------------------ deliveries (administrators)

    async def list_deliveries(
        self,
        actor: Identity,
        *,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryView]:
        self._require_admin(actor)
        query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        async with self.database.read() as db:
            return [delivery_view(r) for r in (await db.execute(query)).scalars()]

    async def resend(self, actor: Identity, delivery_id: int) -> DeliveryView:
        """Send the delivery again as soon as its line allows (the same webhook-id and body)."""
        self._require_admin(actor)
        now = self.clock()
        async with self.database.write() as db:
            row = await db.get(WebhookDelivery, delivery_id)
            if row is None:
                raise NotFound(
                    f"Webhook delivery {delivery_id} not found; list them with GET /api/webhooks/deliveries"
                )
            row.status = "pending"
            row.next_attempt_at = now
            row.lease_until = None
            await db.flush()
            return delivery_view(row)

    # ------------------------------------------------------------ enqueue (every node)

    async def enqueue(self) -> int:
        """Turn the outbox rows after the cursor into deliveries; the number of rows read."""
        total = 0
        while await self.database.run_read(lambda conn: TermCursor.behind(conn, CURSOR)):
            try:
                read = await self.database.run_write(self._enqueue_batch)
            except _Raced:
                return total  # another node has these rows; the next pass goes on from its cursor
            total += read
        return total

    def _enqueue_batch(self, conn: Connection) -> int:
        cursor = conn.execute(select(TermCursor.position).where(TermCursor.name == CURSOR)).scalar()
        if cursor is None:
            return 0  # no endpoint was ever registered
        outbox = OutboxEvent.__table__
        rows = conn.execute(
            select(outbox.c.id, outbox.c.course_id, outbox.c.kind, outbox.c.payload, outbox.c.created_at)
            .where(outbox.c.id > cursor)
            .order_by(outbox.c.id)
            .limit(ENQUEUE_BATCH)
        ).all()
        if not rows:
            return 0
        endpoints = conn.execute(
            select(
                WebhookEndpoint.id,
                WebhookEndpoint.course_id,
                WebhookEndpoint.event_types,
                WebhookEndpoint.created_at,
            )
        ).all()
        wanted = [(i, c, set(orjson.loads(t)), at) for i, c, t, at in endpoints]
        values: list[dict[str, Any]] = []
        for _position, course_id, kind, raw, occurred in rows:
            if not wanted:
                break
            event = webhook_event(kind, orjson.loads(raw))
            if event is None:
                continue
            event_type, data = event
            for endpoint_id, only_course, types, endpoint_since in wanted:
                if event_type not in types or (only_course is not None and only_course != course_id):
                    continue
                if occurred < endpoint_since:
                    continue  # happened before the endpoint was registered
                body = {
                    "type": event_type,
                    "timestamp": iso_z(occurred),
                    "data": {"course_id": course_id, **data},
                }
                values.append(
                    {
                        "endpoint_id": endpoint_id,
                        "course_id": course_id,
                        "event_type": event_type,
                        "message_id": "msg_" + uuid.uuid4().hex,
                        "payload": orjson.dumps(body).decode(),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": occurred,
                        "created_at": self.clock(),
                    }
                )
        moved = conn.execute(
            update(TermCursor)
            .where(TermCursor.name == CURSOR, TermCursor.position == cursor)
            .values(position=rows[-1][0])
        )
        if moved.rowcount != 1:
            raise _Raced()  # another node enqueued these rows first: roll back ours
        if values:
            conn.execute(insert(WebhookDelivery), values)
        return len(rows)

    # ------------------------------------------------------------ send (every node)

    async def send_due(self) -> int:
        """Claim and send the deliveries that are due, one per line; the number attempted."""
        if not await self.database.run_read(lambda conn: bool(conn.execute(self._due(self.clock())).first())):
            return 0  # nothing due: no write transaction
        claimed = await self.database.run_write(self._claim)
        if claimed:
            outcomes = await asyncio.gather(*(self._send(c) for c in claimed))
            # Every answer of the pass in one transaction (one write, not one per delivery).
            await self.database.run_write(lambda conn: self._record_all(conn, outcomes))
        return len(claimed)

    async def next_due(self) -> datetime | None:
        """When the first line's head may be attempted next (None: nothing pending)."""

        def work(conn: Connection) -> datetime | None:
            d = WebhookDelivery.__table__
            rows = conn.execute(
                select(d.c.next_attempt_at, d.c.lease_until).where(d.c.id.in_(self._heads()))
            ).all()
            due = [max(at, lease) if lease is not None else at for at, lease in rows]
            return min(due, default=None)

        return await self.database.run_read(work)

    async def run_pass(self, poll_seconds: float) -> float:
        """Enqueue, send what is due; how long to sleep before the next pass."""
        await self.enqueue()
        if await self.send_due():
            self.in_use = True
            return 0  # the lines' next deliveries may be due now
        upcoming = await self.next_due()
        if upcoming is None:
            self.in_use = await self.database.run_read(
                lambda conn: (
                    conn.execute(select(TermCursor.name).where(TermCursor.name == CURSOR)).first() is not None
                )
            )
            return poll_seconds
        self.in_use = True
        return min(poll_seconds, (upcoming - self.clock()).total_seconds())

    @staticmethod
    def _heads() -> Any:
        d = WebhookDelivery.__table__
        return (
            select(func.min(d.c.id))
            .where(d.c.status == "pending")
            .group_by(d.c.endpoint_id, d.c.course_id)
            .scalar_subquery()
        )

    def _due(self, now: datetime) -> Any:
        """The first undelivered delivery of each line, if it may be attempted now."""
        d = WebhookDelivery.__table__
        return (
            select(
                d.c.id, WebhookEndpoint.url, WebhookEndpoint.secret, d.c.message_id, d.c.payload, d.c.attempts
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == d.c.endpoint_id)
            .where(
                d.c.id.in_(self._heads()),
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            )
            .order_by(d.c.id)
            .limit(SEND_BATCH)
        )

    def _claim(self, conn: Connection) -> list[_Claimed]:
        now = self.clock()
        candidates = conn.execute(self._due(now)).all()
        lease = now + timedelta(seconds=self.timeout_seconds * 2 + 30)
        claimed: list[_Claimed] = []
        for delivery_id, url, secret, message_id, payload, attempts in candidates:
            taken = conn.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == "pending",
                    or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                )
                .values(lease_until=lease, attempts=WebhookDelivery.attempts + 1)
            )
            if taken.rowcount == 1:
                claimed.append(_Claimed(delivery_id, url, secret, message_id, payload, attempts + 1))
        return claimed

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=GuardedResolver(self.allowed_networks)),
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                headers={"User-Agent": "attendance-live-webhooks"},
            )
        return self._http

    async def _send(self, claimed: _Claimed) -> tuple[_Claimed, int | None, str | None]:
        status_code: int | None = None
        error: str | None = None
        try:
            await check_target(claimed.url, self.allowed_networks)
            # The real time of sending (not the scheduling clock): receivers compare it with theirs.
            now = utcnow()
            signature = Webhook(claimed.secret).sign(claimed.message_id, now, claimed.payload)
            headers = {
                "content-type": "application/json",
                "webhook-id": claimed.message_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            }
            async with self._client().post(
                claimed.url, data=claimed.payload.encode(), headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                if not 200 <= response.status < 300:
                    error = f"HTTP {response.status} {response.reason or ''}".strip()
        except asyncio.CancelledError:
            raise
        except InvalidInput as exc:
            error = exc.message
        except TimeoutError:
            error = f"no answer within {self.timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # recorded on the delivery, never lost
            log.exception("webhook delivery %d failed unexpectedly", claimed.id)
            error = f"{type(exc).__name__}: {exc}"
        return claimed, status_code, error

    def _record_all(
        self, conn: Connection, outcomes: Sequence[tuple[_Claimed, int | None, str | None]]
    ) -> None:
        for claimed, status_code, error in outcomes:
            self._record(conn, claimed, status_code, error)

    def _record(
        self, conn: Connection, claimed: _Claimed, status_code: int | None, error: str | None
    ) -> None:
        now = self.clock()
        values: dict[str, Any] = {"lease_until": None, "last_status_code": status_code}
        if error is None:
            values.update(status="delivered", delivered_at=now, last_error=None)
        else:
            values["last_error"] = error[:ERROR_CHARS]
            if claimed.attempts >= MAX_ATTEMPTS:
                values["status"] = "failed"
                log.warning("webhook delivery %d failed %d times; giving up", claimed.id, claimed.attempts)
            else:
                values["next_attempt_at"] = now + RETRY_SCHEDULE[claimed.attempts - 1]
        conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claimed.id, WebhookDelivery.status == "pending")
            .values(**values)
        )


class _Raced(Exception):
    """Another node moved the cursor first."""

"""What webhooks carry and what their API shows: event types, an outbox row as a webhook event,
and the views of endpoints and deliveries.

``webhook_event`` maps an outbox row (``service.outbox``) to its webhook event type and ``data``
(a record without its audit: addresses and devices stay in the server). The sending, retries and
cursor are ``service.webhooks``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel

from attendance_live.db.term_models import WebhookDelivery, WebhookEndpoint
from attendance_live.service.alerts import ABSENCE_ALERT_KIND
from attendance_live.service.outbox import ENROLLMENT, RECORD
from attendance_live.timeutil import iso_z

__all__ = [
    "EVENT_TYPES",
    "DeliveryView",
    "EndpointCreated",
    "EndpointView",
    "EventType",
    "delivery_view",
    "endpoint_view",
    "webhook_event",
]


EventType = Literal[
    "session.started", "session.ended", "record.changed", "enrollment.changed", "absence.alert"
]


EVENT_TYPES: Final[tuple[EventType, ...]] = (
    "session.started",
    "session.ended",
    "record.changed",
    "enrollment.changed",
    "absence.alert",
)


class EndpointView(BaseModel):
    id: str
    url: str
    course_id: str | None
    event_types: list[EventType]
    description: str | None
    created_at: str


class EndpointCreated(EndpointView):
    secret: str


class DeliveryView(BaseModel):
    id: int
    endpoint_id: str
    course_id: str
    event_type: str
    message_id: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    last_status_code: int | None
    created_at: str
    delivered_at: str | None
    payload: dict[str, Any]


def webhook_event(kind: str, payload: dict[str, Any]) -> tuple[EventType, dict[str, Any]] | None:
    """The webhook event type and ``data`` of an outbox row; None for rows no webhook carries."""
    if kind == "courseSessionStarted":
        return "session.started", payload
    if kind == "courseSessionEnded":
        return "session.ended", payload
    if kind == RECORD:
        record = payload["record"]
        # The record without its audit (addresses and devices stay in the server).
        return "record.changed", {
            "session_id": payload["session_id"],
            "user_id": payload["user_id"],
            "name": record.get("name"),
            "status": record.get("status"),
            "marked_at": record.get("marked_at"),
            "marked_by": record.get("marked_by"),
            "remarks": record.get("remarks"),
        }
    if kind == ENROLLMENT:
        return "enrollment.changed", {"user_id": payload["user_id"], "status": payload["status"]}
    if kind == ABSENCE_ALERT_KIND:
        return "absence.alert", payload
    return None


def endpoint_view(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=row.id,
        url=row.url,
        course_id=row.course_id,
        event_types=orjson.loads(row.event_types),
        description=row.description,
        created_at=iso_z(row.created_at) or "",
    )


def delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        endpoint_id=row.endpoint_id,
        course_id=row.course_id,
        event_type=row.event_type,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=iso_z(row.next_attempt_at) if row.status == "pending" else None,
        last_error=row.last_error,
        last_status_code=row.last_status_code,
        created_at=iso_z(row.created_at) or "",
        delivered_at=iso_z(row.delivered_at),
        payload=orjson.loads(row.payload),
    )

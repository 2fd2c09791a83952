"""Webhook endpoints and their deliveries (administrators): register, list, delete, resend."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from attendance_live.api.deps import Caller
from attendance_live.api.errors import ERRORS
from attendance_live.service.webhook_views import DeliveryView, EndpointCreated, EndpointView, EventType
from attendance_live.service.webhooks import Webhooks
from attendance_live.vocabulary import ID_MAX_CHARS, ID_PATTERN

__all__ = ["WebhookCreate", "WebhooksDep", "get_webhooks", "router"]

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    url: str = Field(min_length=8, max_length=2000, examples=["https://lms.example.edu/hooks/attendance"])
    event_types: list[EventType] = Field(min_length=1, max_length=5)
    course_id: str | None = Field(
        default=None, pattern=ID_PATTERN, max_length=ID_MAX_CHARS, description="Omit for every course"
    )
    secret: str | None = Field(
        default=None, max_length=200, description="whsec_ + base64; omit to have one generated"
    )
    description: str | None = Field(default=None, max_length=200)


async def get_webhooks(request: Request) -> Webhooks:
    webhooks: Webhooks = request.app.state.term.webhooks
    return webhooks


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS)
async def create_endpoint(body: WebhookCreate, caller: Caller, webhooks: WebhooksDep) -> EndpointCreated:
    """Register an endpoint; the answer holds its signing secret (shown only here)."""
    return await webhooks.create_endpoint(
        caller,
        url=body.url,
        event_types=body.event_types,
        course_id=body.course_id,
        secret=body.secret,
        description=body.description,
    )


@router.get("", responses=ERRORS)
async def list_endpoints(caller: Caller, webhooks: WebhooksDep) -> list[EndpointView]:
    return await webhooks.list_endpoints(caller)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_endpoint(
    endpoint_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")], caller: Caller, webhooks: WebhooksDep
) -> Response:
    await webhooks.delete_endpoint(caller, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/deliveries", responses=ERRORS)
async def list_deliveries(
    caller: Caller,
    webhooks: WebhooksDep,
    endpoint_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    delivery_status: Annotated[
        Literal["pending", "delivered", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryView]:
    """The newest deliveries first: status, attempts, last error, next attempt."""
    return await webhooks.list_deliveries(
        caller, endpoint_id=endpoint_id, status=delivery_status, limit=limit
    )


@router.post("/deliveries/{delivery_id}/resend", responses=ERRORS)
async def resend(
    delivery_id: Annotated[int, Path(ge=1)], caller: Caller, webhooks: WebhooksDep, request: Request
) -> DeliveryView:
    """Send a delivery again (the same webhook-id and body), as soon as its line allows."""
    view = await webhooks.resend(caller, delivery_id)
    request.app.state.term.wake_webhooks()
    return view

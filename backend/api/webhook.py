"""POST /api/v1/webhooks/payments: payment providers notifying the server directly.

Public through nginx, so it is authenticated by its signature instead of the internal token:
`X-Pomogator-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body>` with
PAYMENT_WEBHOOK_SECRET, within PAYMENT_WEBHOOK_TOLERANCE_S of now. Idempotent by event_id.
"""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from backend.api.dependencies import CatalogDep, ClockDep, MetricsDep, SessionDep, SettingsDep
from backend.models.schemas import ErrorBody, PaymentEventIn, PaymentEventOut
from backend.services.payment_service import PaymentService, verify_signature
from backend.utils.exceptions import DomainError, WebhookNotConfigured

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
MAX_BODY = 64 * 1024


class InvalidEvent(DomainError):
    code = "validation_error"
    status_code = 422
    default_message = "The event body is not valid."


SIGNED_EVENT: dict[str, Any] = {
    # The body is read raw (the signature covers its bytes), so FastAPI cannot infer these.
    "parameters": [
        {
            "name": "X-Pomogator-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + raw body>",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PaymentEventIn.model_json_schema()}},
    },
}


@router.post(
    "/payments",
    openapi_extra=SIGNED_EVENT,
    responses={
        401: {"model": ErrorBody, "description": "bad_signature"},
        404: {"model": ErrorBody, "description": "webhook_not_configured"},
        413: {"model": ErrorBody, "description": "payload_too_large"},
        422: {"model": ErrorBody, "description": "validation_error"},
        503: {"model": ErrorBody, "description": "database_unavailable"},
    },
)
async def payment_event(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    clock: ClockDep,
    metrics: MetricsDep,
) -> PaymentEventOut:
    secret = settings.payment_webhook_secret.get_secret_value()
    if not secret:
        raise WebhookNotConfigured
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidEvent("The event body is too large.")
    verify_signature(
        secret,
        request.headers.get("x-pomogator-signature"),
        body,
        clock(),
        settings.payment_webhook_tolerance_s,
    )
    try:
        event = PaymentEventIn.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidEvent(
            details=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        ) from None
    payments = PaymentService(session, settings, clock, metrics=metrics)
    return await payments.apply_event(event, catalog)

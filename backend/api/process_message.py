"""POST /api/v1/messages: a question answered by the chosen model, as JSON or NDJSON."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.api.dependencies import ChatServiceDep
from backend.models.schemas import ErrorBody, MessageIn, MessageOut

router = APIRouter(tags=["messages"])

NDJSON = "application/x-ndjson"


async def ndjson(events: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
    async for event in events:
        yield event.model_dump_json().encode() + b"\n"


@router.post(
    "/messages",
    response_model=MessageOut,
    responses={
        200: {"content": {NDJSON: {}}, "description": "The answer (JSON, or NDJSON events)"},
        402: {"model": ErrorBody, "description": "quota_exhausted, vip_required"},
        403: {"model": ErrorBody, "description": "user_blocked: suspended by the operators"},
        409: {"model": ErrorBody, "description": "duplicate_request"},
        413: {"model": ErrorBody, "description": "attachment_too_large, payload_too_large"},
        415: {"model": ErrorBody, "description": "unsupported_document"},
        422: {"model": ErrorBody, "description": "message_too_long, validation_error"},
        429: {"model": ErrorBody, "description": "rate_limited, fair_use_exceeded"},
        502: {"model": ErrorBody, "description": "provider_error"},
        503: {"model": ErrorBody, "description": "provider_unavailable, provider_not_configured"},
        504: {"model": ErrorBody, "description": "provider_timeout"},
    },
)
async def process_message(body: MessageIn, chat: ChatServiceDep) -> Any:
    """Answer with the user's model. With `"stream": true` the body is NDJSON events.

    Quota, length and configuration are checked before anything is streamed, so those
    failures are real HTTP errors in either mode; a provider failure mid-stream is an
    `error` event after the credit was refunded.
    """
    if not body.stream:
        return await chat.answer(body)
    prepared = await chat.prepare(body)
    return StreamingResponse(
        ndjson(chat.events(prepared)),
        media_type=NDJSON,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

"""The SDK client every adapter talks through, and reading the loosely typed objects it returns."""

from collections.abc import Mapping
from typing import Any

import httpx2
import openai
import structlog


def build_client(
    *,
    base_url: str,
    api_key: str,
    max_retries: int = 1,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 120.0,
    max_connections: int = 1000,
    http_client: httpx2.AsyncClient | None = None,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client for one provider, with bounded retries and per-request timeouts."""
    timeout = httpx2.Timeout(read_timeout_s, connect=connect_timeout_s)
    if http_client is None:
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=100)
        http_client = openai.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
    # The SDK passes `timeout` with every request, so it also governs a caller's http_client.
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=max_retries,
        timeout=timeout,
        http_client=http_client,
    )


def request_id_headers() -> dict[str, str]:
    """The request id of the call being served, for the SDK's `extra_headers`.

    A provider's support can then find our request in its own logs.
    """
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"X-Request-ID": str(request_id)} if request_id else {}


def read_field(obj: object, name: str) -> Any:
    """A field of an SDK object or of a raw dict, None when absent.

    Compatible providers send fields and item types the SDK does not know; it keeps them as
    untyped extras (often plain dicts) or coerces them into an unrelated model, so adapters
    read by name instead of trusting the declared types.
    """
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def as_int(value: object) -> int:
    """A token count as int; anything missing or malformed counts as zero."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


# One event of each shape the adapters read. The SDK builds its pydantic models lazily, on
# the first event of each type (seconds for the Responses unions): paying that at start-up
# keeps it out of the first user's answer.
_WARM_UP_EVENTS: tuple[dict[str, Any], ...] = (
    {"type": "response.created", "sequence_number": 0, "response": None},
    {
        "type": "response.output_text.delta",
        "sequence_number": 1,
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": "x",
        "logprobs": [],
    },
    {"type": "response.reasoning.search_results", "sequence_number": 2, "results": []},
    {
        "type": "response.reasoning_summary_text.delta",
        "sequence_number": 3,
        "item_id": "i",
        "output_index": 0,
        "summary_index": 0,
        "delta": "x",
    },
    {"type": "error", "sequence_number": 4, "code": "x", "message": "x", "param": None},
)
_WARM_UP_RESPONSE: dict[str, Any] = {
    "id": "r",
    "object": "response",
    "created_at": 0,
    "model": "m",
    "status": "completed",
    "output": [
        {
            "type": "message",
            "id": "m",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "x", "annotations": []}],
        },
        {"type": "search_results", "results": []},
    ],
    "parallel_tool_calls": False,
    "tool_choice": "auto",
    "tools": [],
    "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
}


def warm_up_sdk_models() -> None:
    """Build the SDK's response models now (CPU only, no network)."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.responses import Response, ResponseStreamEvent

    for event in _WARM_UP_EVENTS:
        construct_type(type_=ResponseStreamEvent, value=event)
    construct_type(type_=Response, value=_WARM_UP_RESPONSE)
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
    }
    construct_type(type_=ChatCompletionChunk, value=chunk)
    completion = {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "x"}}
        ],
    }
    construct_type(type_=ChatCompletion, value=completion)

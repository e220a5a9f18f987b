"""The SDK client every adapter talks through, and reading the loosely typed objects it returns."""

from collections.abc import Awaitable, Mapping
from typing import Any
from urllib.parse import quote

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


# The calls below take the provider's JSON as sent, as plain dicts, instead of the SDK's typed
# models. The SDK validates a Response, a chunk or a stream event against its pydantic models;
# building those models' validators costs ~34 MB of the backend's memory and, for the stream
# events, about a sixth of its CPU per answer. The adapters read fields by name from either
# (`read_field`), because compatible providers send shapes the models do not know anyway.
# Errors, retries, headers, timeouts and the SSE protocol stay the SDK's.


def _body_and_options(params: dict[str, Any]) -> tuple[dict[str, Any], openai.RequestOptions]:
    """The request body and the SDK's request options of `create`-style keyword arguments."""
    body = {k: v for k, v in params.items() if k not in ("extra_headers", "extra_body")}
    body |= params.get("extra_body") or {}
    return body, {"headers": params.get("extra_headers") or {}}


def post_json(client: openai.AsyncOpenAI, path: str, params: dict[str, Any]) -> Awaitable[object]:
    """POST `params` (as for the SDK's `create`) to `path`; the answer as the decoded JSON."""
    body, options = _body_and_options(params)
    return client.post(path, body=body, cast_to=object, options=options)


def post_stream(
    client: openai.AsyncOpenAI, path: str, params: dict[str, Any]
) -> Awaitable[openai.AsyncStream[object]]:
    """POST `params` with `stream: true` to `path`; its server-sent events as decoded JSON."""
    body, options = _body_and_options(params)
    return client.post(
        path,
        body={**body, "stream": True},
        cast_to=object,
        options=options,
        stream=True,
        stream_cls=openai.AsyncStream[object],
    )


def get_json(client: openai.AsyncOpenAI, path: str) -> Awaitable[object]:
    """GET `path`; the answer as the decoded JSON."""
    return client.get(path, cast_to=object, options={"headers": request_id_headers()})


def path_part(value: str) -> str:
    """An id from a provider, safe to put in a URL path."""
    return quote(value, safe="")

"""The SDK client every adapter talks through, and reading the loosely typed objects it returns."""

from collections.abc import Mapping
from typing import Any

import httpx2
import openai


def build_client(
    *,
    base_url: str,
    api_key: str,
    max_retries: int = 1,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 120.0,
    http_client: httpx2.AsyncClient | None = None,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client for one provider, with bounded retries and per-request timeouts."""
    timeout = httpx2.Timeout(read_timeout_s, connect=connect_timeout_s)
    if http_client is None:
        http_client = openai.DefaultAsyncHttpxClient(timeout=timeout)
    # The SDK passes `timeout` with every request, so it also governs a caller's http_client.
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=max_retries,
        timeout=timeout,
        http_client=http_client,
    )


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

"""Turning SDK, transport and parsing failures into the ProviderError family, under a deadline."""

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, TypeVar

import httpx2
import openai
import pydantic

from backend.services.providers.base import (
    ContentRefused,
    ContextTooLong,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)

T = TypeVar("T")

# What a provider exchange may raise when the provider, the network or the payload is at fault.
# Anything else is a bug in our code and is left to propagate.
PROVIDER_FAILURES: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx2.HTTPError,
    httpx2.StreamError,
    json.JSONDecodeError,
    pydantic.ValidationError,
    TimeoutError,
)

_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "too_many_requests"})
_UNAVAILABLE_CODES = frozenset({"server_error", "service_unavailable", "overloaded", "api_error"})
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTENT_POLICY_CODES = frozenset(
    {
        "content_filter",
        "content_policy_violation",
        "invalid_prompt",  # OpenAI's code for prompts flagged by its usage policies
        "bio_policy",
        "cyber_policy",
        "misalignment_policy_violation",
        "moderation_blocked",  # the Images API's refusal
    }
)
_CONTEXT_MESSAGE = re.compile(r"context[ _](length|window)|maximum context", re.IGNORECASE)
# DeepSeek refuses sensitive prompts with a 400 and only this message.
_CONTENT_MESSAGE = re.compile(r"content exists risk", re.IGNORECASE)


def error_for_code(code: str | None, message: str | None = None) -> ProviderError:
    """The ProviderError for an error code reported inside a response body or a stream."""
    details: dict[str, Any] = {"provider_code": code} if code else {}
    text = message or ""
    if code in _RATE_LIMIT_CODES:
        return ProviderRateLimited(**details)
    if code in _CONTEXT_CODES or _CONTEXT_MESSAGE.search(text):
        return ContextTooLong(**details)
    if code in _CONTENT_POLICY_CODES or _CONTENT_MESSAGE.search(text):
        return ContentRefused(**details)
    if code in _UNAVAILABLE_CODES:
        return ProviderUnavailable(**details)
    return ProviderError(**details)


def _retry_after_s(response: httpx2.Response) -> float | None:
    """The server's Retry-After in seconds, when it gave a number."""
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def map_openai_error(exc: BaseException) -> ProviderError:
    """The ProviderError subclass that says what went wrong with a provider call."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return ProviderTimeout()
    if isinstance(exc, openai.APIStatusError):
        details: dict[str, Any] = {"http_status": exc.status_code}
        if exc.code:
            details["provider_code"] = exc.code
        if isinstance(exc, openai.RateLimitError):
            retry_after = _retry_after_s(exc.response)
            if retry_after is not None:
                details["retry_after_s"] = retry_after
            return ProviderRateLimited(**details)
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            mapped = error_for_code(exc.code, exc.message)
            if isinstance(mapped, ContextTooLong | ContentRefused):
                return type(mapped)(**details)
            return ProviderError(**details)
        # 402 is DeepSeek's "insufficient balance": the operator's problem, like a bad key.
        if (
            isinstance(
                exc,
                openai.InternalServerError
                | openai.AuthenticationError
                | openai.PermissionDeniedError
                | openai.NotFoundError,
            )
            or exc.status_code == 402
        ):
            return ProviderUnavailable(**details)
        return ProviderError(**details)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable()
    if isinstance(exc, openai.APIError):
        # Raised mid-stream when an event carries a top-level "error" (Perplexity's failed run).
        return error_for_code(exc.code, exc.message)
    return ProviderError()


class _Stream(Protocol):
    def __anext__(self) -> Awaitable[object]: ...

    async def close(self) -> None: ...


# A provider ends the body right after an answer's last event. A response closed before its
# end takes its connection with it, so each answer would open a new one (TCP and TLS); the
# end is waited for this long.
DRAIN_S = 0.5


async def close_quietly(stream: _Stream, *, drain: bool = False) -> None:
    """Release a provider stream; the outcome is already decided, so a failing close is ignored.

    With `drain` (the answer is complete), what is left of the stream is read first, for up to
    DRAIN_S, and dropped: its connection then goes back to the pool for the next answer.
    """
    if drain:
        with contextlib.suppress(*PROVIDER_FAILURES, OSError, StopAsyncIteration):
            async with asyncio.timeout(DRAIN_S):
                while True:
                    await stream.__anext__()
    with contextlib.suppress(*PROVIDER_FAILURES, OSError):
        await stream.close()


class Deadline:
    """The overall time limit of one answer; every wait on the provider runs under it.

    The limit is applied to each await separately rather than around the whole generator, so
    it can never fire while the consumer is working between two events.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._at = self._loop.time() + seconds

    def remaining(self) -> float:
        """Seconds left before the deadline, never negative."""
        return max(0.0, self._at - self._loop.time())

    async def run(self, step: Awaitable[T]) -> T:
        """Await one provider step, raising only ProviderError subclasses."""
        try:
            async with asyncio.timeout_at(self._at):
                return await step
        except TimeoutError as exc:
            raise ProviderTimeout(timeout_s=self.seconds) from exc
        except PROVIDER_FAILURES as exc:
            raise map_openai_error(exc) from exc

    async def next(self, iterator: AsyncIterator[T]) -> T | None:
        """The next item of a provider stream, or None when it has ended."""
        try:
            return await self.run(anext(iterator))
        except StopAsyncIteration:
            return None

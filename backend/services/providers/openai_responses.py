"""OpenAI Responses API: streamed or whole answers with a reasoning summary and token usage."""

from collections.abc import AsyncGenerator, AsyncIterator
from decimal import Decimal, InvalidOperation
from typing import Any

import openai
from openai.types.responses import EasyInputMessageParam

from backend.services.providers.base import (
    ContentRefused,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from backend.services.providers.client import (
    as_int,
    post_json,
    post_stream,
    read_field,
    request_id_headers,
)
from backend.services.providers.errors import Deadline, close_quietly, error_for_code

_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_REASONING_DELTAS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)
_REFUSAL_EVENTS = frozenset({"response.refusal.delta", "response.refusal.done"})
_PART_EVENTS = frozenset({"response.content_part.added", "response.content_part.done"})


def input_messages(request: ProviderRequest) -> list[EasyInputMessageParam]:
    """The conversation as Responses `input` messages, oldest first, the new message last.

    A turn with photos becomes content parts: its text, then one `input_image` per photo.
    """
    messages: list[EasyInputMessageParam] = []
    for turn in request.turns:
        if not turn.images:
            messages.append({"role": turn.role, "content": turn.content})
            continue
        parts: list[Any] = [{"type": "input_text", "text": turn.content}]
        parts += [
            {"type": "input_image", "image_url": url, "detail": "auto"} for url in turn.images
        ]
        messages.append({"role": turn.role, "content": parts})
    return messages


def _message_parts(response: object) -> list[object]:
    """The content parts of every message item of a Response, in order."""
    parts: list[object] = []
    for item in read_field(response, "output") or []:
        if read_field(item, "type") == "message":
            parts.extend(read_field(item, "content") or [])
    return parts


def output_text(response: object) -> str:
    """The answer: every output_text part of the message items joined."""
    texts = [
        read_field(part, "text")
        for part in _message_parts(response)
        if read_field(part, "type") == "output_text"
    ]
    return "".join(text for text in texts if isinstance(text, str))


def reasoning_summary(response: object) -> str:
    """The reasoning summary of a Response, its parts separated by blank lines."""
    texts: list[str] = []
    for item in read_field(response, "output") or []:
        if read_field(item, "type") != "reasoning":
            continue
        for part in read_field(item, "summary") or []:
            text = read_field(part, "text")
            if isinstance(text, str) and text:
                texts.append(text)
    return "\n\n".join(texts)


def check_response(response: object) -> None:
    """Raise the ProviderError a finished Response stands for; return if it holds an answer."""
    status = read_field(response, "status")
    if status == "failed":
        error = read_field(response, "error")
        raise error_for_code(read_field(error, "code"), read_field(error, "message"))
    if status == "incomplete":
        reason = read_field(read_field(response, "incomplete_details"), "reason")
        if reason == "content_filter":
            raise ContentRefused(provider_code=reason)
        # Any other reason (max_output_tokens...) only cut the answer short: keep what came.
    elif status != "completed":
        raise ProviderError(provider_status=status)
    if any(read_field(part, "type") == "refusal" for part in _message_parts(response)):
        raise ContentRefused()


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def response_usage(response: object) -> Usage | None:
    """Token usage (and the provider's own cost, if it reports one) of a finished Response."""
    usage = read_field(response, "usage")
    if usage is None:
        return None
    input_details = read_field(usage, "input_tokens_details")
    # OpenAI reports cached input as cached_tokens, Perplexity as cache_read_input_tokens.
    cached = as_int(read_field(input_details, "cached_tokens")) or as_int(
        read_field(input_details, "cache_read_input_tokens")
    )
    return Usage(
        input_tokens=as_int(read_field(usage, "input_tokens")),
        output_tokens=as_int(read_field(usage, "output_tokens")),
        cached_input_tokens=cached,
        reasoning_tokens=as_int(
            read_field(read_field(usage, "output_tokens_details"), "reasoning_tokens")
        ),
        cost_usd=_decimal(read_field(read_field(usage, "cost"), "total_cost")),
    )


def final_events(response: object) -> list[ProviderEvent]:
    """The events of a whole (non-streamed) Response: reasoning summary, text, usage."""
    check_response(response)
    text = output_text(response)
    if not text:
        raise ProviderError(reason="empty_answer")
    events: list[ProviderEvent] = []
    summary = reasoning_summary(response)
    if summary:
        events.append(ReasoningDelta(summary))
    events.append(TextDelta(text))
    usage = response_usage(response)
    if usage is not None:
        events.append(usage)
    return events


class ResponsesStreamReader:
    """Turns Responses stream events into provider events, one event at a time."""

    def __init__(self) -> None:
        self.finished = False
        self.text_seen = False
        self._reasoning_part: tuple[object, object] | None = None

    def feed(self, event: object) -> list[ProviderEvent]:
        """The provider events one stream event stands for; raises if it reports a failure."""
        kind = read_field(event, "type")
        if kind == "response.output_text.delta":
            return self._text(read_field(event, "delta"))
        if kind in _REASONING_DELTAS:
            return self._reasoning(event)
        if kind in _REFUSAL_EVENTS or (
            kind in _PART_EVENTS and read_field(read_field(event, "part"), "type") == "refusal"
        ):
            raise ContentRefused()
        if kind == "error":
            raise error_for_code(read_field(event, "code"), read_field(event, "message"))
        if kind in _TERMINAL_EVENTS:
            return self.finish(read_field(event, "response"))
        return []

    def finish(self, response: object) -> list[ProviderEvent]:
        """The closing events for the final Response of the stream."""
        check_response(response)
        self.finished = True
        events: list[ProviderEvent] = []
        if not self.text_seen:
            # Some compatible providers send the text only in the final object.
            events.extend(self._text(output_text(response)))
        if not self.text_seen:
            raise ProviderError(reason="empty_answer")
        usage = response_usage(response)
        if usage is not None:
            events.append(usage)
        return events

    def _text(self, delta: object) -> list[ProviderEvent]:
        if not isinstance(delta, str) or not delta:
            return []
        self.text_seen = True
        return [TextDelta(delta)]

    def _reasoning(self, event: object) -> list[ProviderEvent]:
        delta = read_field(event, "delta")
        if not isinstance(delta, str) or not delta:
            return []
        part = (read_field(event, "item_id"), read_field(event, "summary_index"))
        if self._reasoning_part is not None and part != self._reasoning_part:
            delta = "\n\n" + delta
        self._reasoning_part = part
        return [ReasoningDelta(delta)]


class OpenAIResponsesAdapter:
    """Answers through the OpenAI Responses API (`POST /responses`).

    Reads `options["reasoning_effort"]`; a summary of the reasoning is asked for unless the
    effort is "none".
    """

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client

    def answer(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the answer as events; raise a ProviderError when no usable answer comes."""
        return self._streamed(request) if request.stream else self._whole(request)

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.api_model,
            "input": input_messages(request),
            "store": False,
        }
        if request.instructions:
            params["instructions"] = request.instructions
        if request.max_output_tokens is not None:
            params["max_output_tokens"] = request.max_output_tokens
        effort = request.options.get("reasoning_effort")
        if effort is not None:
            params["reasoning"] = (
                {"effort": effort} if effort == "none" else {"effort": effort, "summary": "auto"}
            )
        params["extra_headers"] = request_id_headers()
        return params

    async def _whole(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        response = await deadline.run(post_json(self._client, "/responses", self._params(request)))
        for event in final_events(response):
            yield event

    async def _streamed(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        stream = await deadline.run(post_stream(self._client, "/responses", self._params(request)))
        reader = ResponsesStreamReader()
        try:
            while not reader.finished and (event := await deadline.next(stream)) is not None:
                for out in reader.feed(event):
                    yield out
        finally:
            await close_quietly(stream, drain=reader.finished)
        if not reader.finished:
            raise ProviderError(reason="stream_ended_early")

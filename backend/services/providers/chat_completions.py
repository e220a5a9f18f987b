"""DeepSeek over Chat Completions: the answer, its separate reasoning, and token usage."""

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from backend.services.providers.base import (
    ContentRefused,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ProviderUnavailable,
    ReasoningDelta,
    Role,
    TextDelta,
    Turn,
    Usage,
)
from backend.services.providers.client import (
    as_int,
    post_json,
    post_stream,
    read_field,
    request_id_headers,
)
from backend.services.providers.errors import Deadline, close_quietly


def chat_messages(instructions: str, turns: Sequence[Turn]) -> list[ChatCompletionMessageParam]:
    """The system prompt, then the turns with consecutive same-role turns merged.

    DeepSeek wants user and assistant to alternate; a merged turn keeps every text, separated
    by a blank line, and a user turn with photos becomes text and `image_url` parts. Earlier
    reasoning is never sent back: without tool calls it is ignored.
    """
    merged: list[tuple[Role, list[str], list[str]]] = []
    for turn in turns:
        if merged and merged[-1][0] == turn.role:
            merged[-1][1].append(turn.content)
            merged[-1][2].extend(turn.images)
        else:
            merged.append((turn.role, [turn.content], list(turn.images)))
    messages: list[ChatCompletionMessageParam] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for role, texts, images in merged:
        content = "\n\n".join(texts)
        if role == "assistant":
            messages.append({"role": "assistant", "content": content})
        elif images:
            parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": content}]
            parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": content})
    return messages


def _check_finish(reason: object) -> None:
    if reason == "content_filter":
        raise ContentRefused(provider_code=reason)
    # DeepSeek stops with this reason when it runs out of capacity mid-answer.
    if reason == "insufficient_system_resource":
        raise ProviderUnavailable(provider_code=reason)


def _usage(usage: object) -> Usage:
    cached = as_int(read_field(usage, "prompt_cache_hit_tokens")) or as_int(
        read_field(read_field(usage, "prompt_tokens_details"), "cached_tokens")
    )
    return Usage(
        input_tokens=as_int(read_field(usage, "prompt_tokens")),
        output_tokens=as_int(read_field(usage, "completion_tokens")),
        cached_input_tokens=cached,
        reasoning_tokens=as_int(
            read_field(read_field(usage, "completion_tokens_details"), "reasoning_tokens")
        ),
    )


class ChatCompletionsAdapter:
    """Answers through Chat Completions (`POST /chat/completions`, DeepSeek).

    Reads `options["thinking"]` (thinking mode on or off, sent either way) and
    `options["reasoning_effort"]` (sent when present).
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
        options = request.options
        thinking = "enabled" if options.get("thinking") else "disabled"
        params: dict[str, Any] = {
            "model": request.api_model,
            "messages": chat_messages(request.instructions, request.turns),
            # DeepSeek thinks by default, so the choice is always stated.
            "extra_body": {"thinking": {"type": thinking}},
        }
        if options.get("reasoning_effort") is not None:
            params["reasoning_effort"] = options["reasoning_effort"]
        if request.max_output_tokens is not None:
            params["max_tokens"] = request.max_output_tokens
        params["extra_headers"] = request_id_headers()
        return params

    async def _whole(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        completion = await deadline.run(
            post_json(self._client, "/chat/completions", self._params(request))
        )
        choices = read_field(completion, "choices") or []
        if not choices:
            raise ProviderError(reason="no_choices")
        _check_finish(read_field(choices[0], "finish_reason"))
        message = read_field(choices[0], "message")
        reasoning = read_field(message, "reasoning_content")
        text = read_field(message, "content")
        if not isinstance(text, str) or not text:
            raise ProviderError(reason="empty_answer")
        if isinstance(reasoning, str) and reasoning:
            yield ReasoningDelta(reasoning)
        yield TextDelta(text)
        usage = read_field(completion, "usage")
        if usage is not None:
            yield _usage(usage)

    async def _streamed(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        params = {**self._params(request), "stream_options": {"include_usage": True}}
        stream = await deadline.run(post_stream(self._client, "/chat/completions", params))
        finished = text_seen = False
        try:
            while (chunk := await deadline.next(stream)) is not None:
                # Only one choice is ever asked for (n defaults to 1).
                for choice in (read_field(chunk, "choices") or [])[:1]:
                    delta = read_field(choice, "delta")
                    reasoning = read_field(delta, "reasoning_content")
                    if isinstance(reasoning, str) and reasoning:
                        yield ReasoningDelta(reasoning)
                    content = read_field(delta, "content")
                    if isinstance(content, str) and content:
                        text_seen = True
                        yield TextDelta(content)
                    reason = read_field(choice, "finish_reason")
                    if reason:
                        _check_finish(reason)
                        finished = True
                usage = read_field(chunk, "usage")
                if usage is not None:
                    yield _usage(usage)
        finally:
            await close_quietly(stream)
        if not finished:
            raise ProviderError(reason="stream_ended_early")
        if not text_seen:
            raise ProviderError(reason="empty_answer")

"""Perplexity Agent API (Responses-compatible): web-grounded answers with sources and a cost."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Any

import openai

from backend.services.providers.base import (
    Progress,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    Source,
    Sources,
)
from backend.services.providers.client import (
    get_json,
    path_part,
    post_json,
    post_stream,
    read_field,
    request_id_headers,
)
from backend.services.providers.errors import (
    PROVIDER_FAILURES,
    Deadline,
    close_quietly,
    error_for_code,
)
from backend.services.providers.openai_responses import (
    ResponsesStreamReader,
    final_events,
    input_messages,
)
from backend.utils.logger import get_logger

log = get_logger("backend.providers.perplexity")

_RUNNING = frozenset({"queued", "in_progress"})
# A cancel is a courtesy to stop the provider's billing clock; never wait long for it.
_CANCEL_TIMEOUT_S = 5.0


def _source(raw: object) -> Source | None:
    url = read_field(raw, "url")
    if not isinstance(url, str) or not url:
        return None
    title = read_field(raw, "title")
    date = read_field(raw, "date")
    snippet = read_field(raw, "snippet")
    return Source(
        title=title if isinstance(title, str) and title else url,
        url=url,
        date=date if isinstance(date, str) else None,
        snippet=snippet if isinstance(snippet, str) and snippet else None,
    )


def _search_results(response: object) -> list[object]:
    """The results of every search_results output item of a Response."""
    results: list[object] = []
    for item in read_field(response, "output") or []:
        if read_field(item, "type") == "search_results":
            results.extend(read_field(item, "results") or [])
    return results


class _SourceTracker:
    """Sources of one answer, each URL reported once however often searches return it."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def events(self, results: Iterable[object] | None) -> list[ProviderEvent]:
        fresh: list[Source] = []
        for raw in results or []:
            source = _source(raw)
            if source is not None and source.url not in self._seen:
                self._seen.add(source.url)
                fresh.append(source)
        return [Sources(fresh)] if fresh else []


class _PerplexityStreamReader(ResponsesStreamReader):
    """The Responses reader plus Perplexity's search events and its leaner final events."""

    def __init__(self, sources: _SourceTracker) -> None:
        super().__init__()
        self._sources = sources
        self._searching = False

    def feed(self, event: object) -> list[ProviderEvent]:
        kind = read_field(event, "type")
        if kind == "response.reasoning.search_results":
            return self._sources.events(read_field(event, "results"))
        if kind == "response.reasoning.search_queries" and not self._searching:
            self._searching = True
            return [Progress(stage="searching")]
        if kind == "response.failed" and read_field(event, "response") is None:
            error = read_field(event, "error")
            raise error_for_code(read_field(error, "code"), read_field(error, "message"))
        return super().feed(event)

    def finish(self, response: object) -> list[ProviderEvent]:
        # Perplexity may leave `response` out of response.completed; the deltas are the answer.
        if response is None:
            self.finished = True
            if not self.text_seen:
                raise ProviderError(reason="empty_answer")
            return []
        events = super().finish(response)
        return self._sources.events(_search_results(response)) + events


class PerplexityAgentAdapter:
    """Answers through Perplexity's Agent API (`/responses`).

    Reads `options["effort"]` (the Perplexity effort preset; the catalog's api_model when
    absent), `options["model"]` (sent only when set) and `options["background"]` (submit, then
    poll every `poll_interval_s` seconds, reporting Progress).
    """

    def __init__(self, client: openai.AsyncOpenAI, poll_interval_s: float = 2.0) -> None:
        self._client = client
        self._poll_interval_s = poll_interval_s

    def answer(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the answer as events; raise a ProviderError when no usable answer comes."""
        if request.options.get("background"):
            return self._background(request)
        return self._streamed(request) if request.stream else self._whole(request)

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        options = request.options
        params: dict[str, Any] = {
            "input": input_messages(request),
            # `effort` is Perplexity's own top-level field, unknown to the OpenAI SDK.
            "extra_body": {"effort": options.get("effort", request.api_model)},
        }
        if options.get("model"):
            params["model"] = options["model"]
        if request.instructions:
            params["instructions"] = request.instructions
        if request.max_output_tokens is not None:
            params["max_output_tokens"] = request.max_output_tokens
        params["extra_headers"] = request_id_headers()
        return params

    def _final(self, response: object) -> list[ProviderEvent]:
        events = final_events(response)
        return _SourceTracker().events(_search_results(response)) + events

    async def _whole(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        response = await deadline.run(post_json(self._client, "/responses", self._params(request)))
        for event in self._final(response):
            yield event

    async def _streamed(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        stream = await deadline.run(post_stream(self._client, "/responses", self._params(request)))
        reader = _PerplexityStreamReader(_SourceTracker())
        try:
            while not reader.finished and (event := await deadline.next(stream)) is not None:
                for out in reader.feed(event):
                    yield out
        finally:
            await close_quietly(stream, drain=reader.finished)
        if not reader.finished:
            raise ProviderError(reason="stream_ended_early")

    async def _background(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        deadline = Deadline(request.timeout_s)
        params = {**self._params(request), "background": True}
        response = await deadline.run(post_json(self._client, "/responses", params))
        response_id = read_field(response, "id")
        if not isinstance(response_id, str):
            raise ProviderError(reason="no_response_id")
        settled = False
        try:
            while (status := read_field(response, "status")) in _RUNNING:
                yield Progress(stage=status)
                await deadline.run(asyncio.sleep(self._poll_interval_s))
                response = await deadline.run(
                    get_json(self._client, f"/responses/{path_part(response_id)}")
                )
            settled = True
        finally:
            if not settled:
                await self._cancel(response_id)
        for event in self._final(response):
            yield event

    async def _cancel(self, response_id: str) -> None:
        """Ask Perplexity to stop a run nobody waits for any more; a failure is only logged."""
        try:
            async with asyncio.timeout(_CANCEL_TIMEOUT_S):
                await post_json(self._client, f"/responses/{path_part(response_id)}/cancel", {})
        except PROVIDER_FAILURES as exc:
            log.warning(
                "provider_cancel_failed",
                provider="perplexity",
                response_id=response_id,
                error=type(exc).__name__,
            )

"""The Perplexity Agent adapter, through the real SDK, against the fake provider on loopback."""

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from backend.services.providers.base import (
    Progress,
    ProviderError,
    ProviderEvent,
    ProviderRateLimited,
    ProviderRequest,
    ProviderTimeout,
    ProviderUnavailable,
    Source,
    Sources,
    TextDelta,
    Turn,
    Usage,
)
from backend.services.providers.client import build_client
from backend.services.providers.perplexity import PerplexityAgentAdapter
from tests.fakes.providers import FakeProviders, start_fake_providers

both_modes = pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])

SOURCES = [
    {"title": "SSE spec", "url": "https://html.spec.whatwg.org/sse", "date": "2026-11-30",
     "snippet": "Server-sent events"},
    {"title": "MDN", "url": "https://developer.mozilla.org/sse", "snippet": "Using SSE"},
    {"title": "SSE spec again", "url": "https://html.spec.whatwg.org/sse", "snippet": "dup"},
    {"title": "Blog", "url": "https://example.org/sse"},
]  # fmt: skip


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeProviders]:
    async with start_fake_providers() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_fake(fake: FakeProviders) -> None:
    fake.reset()


@pytest.fixture
async def adapter(fake: FakeProviders) -> AsyncIterator[PerplexityAgentAdapter]:
    client = build_client(base_url=fake.base_url("perplexity"), api_key="pplx-test", max_retries=0)
    adapter = PerplexityAgentAdapter(client, poll_interval_s=0.01)
    yield adapter
    await adapter.aclose()


def ask(stream: bool = True, **fields: Any) -> ProviderRequest:
    defaults: dict[str, Any] = {
        "api_model": "low",
        "instructions": "Answer with sources.",
        "turns": [Turn("user", "What is SSE?")],
        "timeout_s": 5.0,
    }
    return ProviderRequest(**{**defaults, **fields, "stream": stream})


async def collect(adapter: PerplexityAgentAdapter, request: ProviderRequest) -> list[ProviderEvent]:
    return [event async for event in adapter.answer(request)]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def sources_of(events: list[ProviderEvent]) -> list[Source]:
    return [source for e in events if isinstance(e, Sources) for source in e.items]


@both_modes
async def test_answer_text_is_assembled(fake, adapter, stream):
    fake.script("perplexity", text="SSE is a one-way stream of events over HTTP.", chunks=4)

    events = await collect(adapter, ask(stream))

    assert text_of(events) == "SSE is a one-way stream of events over HTTP."


@both_modes
async def test_sources_are_extracted_once_per_url(fake, adapter, stream):
    fake.script("perplexity", sources=SOURCES)

    events = await collect(adapter, ask(stream))

    assert [s.url for s in sources_of(events)] == [
        "https://html.spec.whatwg.org/sse",
        "https://developer.mozilla.org/sse",
        "https://example.org/sse",
    ]
    assert sources_of(events)[0] == Source(
        title="SSE spec",
        url="https://html.spec.whatwg.org/sse",
        date="2026-11-30",
        snippet="Server-sent events",
    )


async def test_streamed_sources_arrive_in_batches_as_searches_return(fake, adapter):
    fake.script("perplexity", sources=SOURCES)

    events = await collect(adapter, ask())

    batches = [[s.url for s in e.items] for e in events if isinstance(e, Sources)]
    assert batches == [
        ["https://html.spec.whatwg.org/sse", "https://developer.mozilla.org/sse"],
        ["https://example.org/sse"],
    ]


@both_modes
async def test_cost_is_reported_as_a_decimal(fake, adapter, stream):
    fake.script(
        "perplexity", input_tokens=120, output_tokens=300, cached_tokens=20, cost_usd=0.0054
    )

    events = await collect(adapter, ask(stream))

    assert events[-1] == Usage(
        input_tokens=120, output_tokens=300, cached_input_tokens=20, cost_usd=Decimal("0.0054")
    )


async def test_effort_is_sent_and_no_model(fake, adapter):
    await collect(adapter, ask(api_model="medium"))

    body = fake.requests("perplexity")[0].body
    assert body["effort"] == "medium"
    assert "model" not in body


async def test_effort_and_model_options_are_sent_when_set(fake, adapter):
    await collect(adapter, ask(options={"effort": "high", "model": "openai/gpt-5.4"}))

    body = fake.requests("perplexity")[0].body
    assert body["effort"] == "high"
    assert body["model"] == "openai/gpt-5.4"


async def test_history_and_instructions_are_sent_in_order(fake, adapter):
    turns = [Turn("user", "Hi"), Turn("assistant", "Hello!"), Turn("user", "What is SSE?")]

    await collect(adapter, ask(turns=turns, instructions="Cite your sources."))

    body = fake.requests("perplexity")[0].body
    assert body["instructions"] == "Cite your sources."
    assert body["input"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is SSE?"},
    ]


@both_modes
@pytest.mark.parametrize(
    ("code", "error"),
    [("server_error", ProviderUnavailable), ("invalid_request", ProviderError)],
)
async def test_failed_run_answered_with_http_200_is_an_error(fake, adapter, stream, code, error):
    fake.script("perplexity", fault="failed", error_code=code)

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask(stream))

    assert type(caught.value) is error


@both_modes
async def test_server_error_is_reported_as_unavailable(fake, adapter, stream):
    fake.script("perplexity", fault="http_500")

    with pytest.raises(ProviderUnavailable):
        await collect(adapter, ask(stream))


@both_modes
async def test_rate_limit_is_reported_as_rate_limited(fake, adapter, stream):
    fake.script("perplexity", fault="http_429")

    with pytest.raises(ProviderRateLimited):
        await collect(adapter, ask(stream))


@both_modes
async def test_slow_provider_runs_into_the_deadline(fake, adapter, stream):
    fake.script("perplexity", fault="slow", slow_s=5)

    with pytest.raises(ProviderTimeout):
        await collect(adapter, ask(stream, timeout_s=0.3))


async def test_malformed_stream_is_a_provider_error(fake, adapter):
    fake.script("perplexity", fault="malformed")

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask())

    assert type(caught.value) is ProviderError


async def test_background_run_reports_progress_then_the_answer(fake, adapter):
    fake.script("perplexity", text="Deep answer.", sources=SOURCES[:1], background_polls=2)

    events = await collect(adapter, ask(options={"background": True}))

    assert [e.stage for e in events if isinstance(e, Progress)] == [
        "queued",
        "in_progress",
        "in_progress",
    ]
    assert text_of(events) == "Deep answer."
    assert [s.url for s in sources_of(events)] == ["https://html.spec.whatwg.org/sse"]
    assert isinstance(events[-1], Usage)
    methods = [r.method for r in fake.requests("perplexity")]
    assert methods == ["POST", "GET", "GET", "GET"]
    assert fake.requests("perplexity")[0].body["background"] is True


async def test_background_run_past_the_deadline_is_cancelled(fake, adapter):
    fake.script("perplexity", background_polls=10_000)
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        await collect(adapter, ask(options={"background": True}, timeout_s=0.2))

    assert time.monotonic() - started < 2
    last = fake.requests("perplexity")[-1]
    assert last.method == "POST"
    assert last.path.endswith("/cancel")


async def test_background_run_that_fails_is_reported(fake, adapter):
    fake.script("perplexity", fault="failed", error_code="server_error", background_polls=1)

    with pytest.raises(ProviderUnavailable):
        await collect(adapter, ask(options={"background": True}))


@both_modes
async def test_answers_one_after_another_share_one_connection(fake, adapter, stream):
    # Closing a stream before the body's end closes its connection: a new TLS handshake each.
    for _ in range(3):
        assert text_of(await collect(adapter, ask(stream)))

    assert len(fake.requests("perplexity")) == 3
    assert fake.connections("perplexity") == 1

"""The OpenAI Responses adapter, through the real SDK, against the fake provider on loopback."""

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.services.providers.base import (
    ContentRefused,
    ContextTooLong,
    ProviderError,
    ProviderEvent,
    ProviderRateLimited,
    ProviderRequest,
    ProviderTimeout,
    ProviderUnavailable,
    ReasoningDelta,
    TextDelta,
    Turn,
    Usage,
)
from backend.services.providers.client import build_client
from backend.services.providers.openai_responses import OpenAIResponsesAdapter
from tests.fakes.providers import FakeProviders, start_fake_providers

both_modes = pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeProviders]:
    async with start_fake_providers() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_fake(fake: FakeProviders) -> None:
    fake.reset()


@pytest.fixture
async def adapter(fake: FakeProviders) -> AsyncIterator[OpenAIResponsesAdapter]:
    client = build_client(base_url=fake.base_url("openai"), api_key="sk-openai-test", max_retries=0)
    adapter = OpenAIResponsesAdapter(client)
    yield adapter
    await adapter.aclose()


def ask(stream: bool = True, **fields: Any) -> ProviderRequest:
    defaults: dict[str, Any] = {
        "api_model": "gpt-6.1-sol",
        "instructions": "You are a helpful Telegram assistant.",
        "turns": [Turn("user", "Explain SSE")],
        "timeout_s": 5.0,
    }
    return ProviderRequest(**{**defaults, **fields, "stream": stream})


async def collect(adapter: OpenAIResponsesAdapter, request: ProviderRequest) -> list[ProviderEvent]:
    return [event async for event in adapter.answer(request)]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


@both_modes
async def test_answer_text_is_assembled(fake, adapter, stream):
    fake.script("openai", text="Server-sent events push text over one HTTP response.", chunks=5)

    events = await collect(adapter, ask(stream))

    assert text_of(events) == "Server-sent events push text over one HTTP response."


async def test_streamed_answer_arrives_in_several_deltas(fake, adapter):
    fake.script("openai", text="one two three four", chunks=4)

    events = await collect(adapter, ask())

    assert len([e for e in events if isinstance(e, TextDelta)]) == 4


@both_modes
async def test_usage_is_reported_with_cached_and_reasoning_tokens(fake, adapter, stream):
    fake.script(
        "openai", input_tokens=120, output_tokens=300, cached_tokens=64, reasoning_tokens=90
    )

    events = await collect(adapter, ask(stream))

    assert events[-1] == Usage(
        input_tokens=120, output_tokens=300, cached_input_tokens=64, reasoning_tokens=90
    )


@both_modes
async def test_reasoning_summary_is_kept_apart_from_the_answer(fake, adapter, stream):
    fake.script("openai", text="The answer.", reasoning="First I looked.\n\nThen I decided.")

    events = await collect(adapter, ask(stream, options={"reasoning_effort": "low"}))

    assert reasoning_of(events) == "First I looked.\n\nThen I decided."
    assert text_of(events) == "The answer."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(not isinstance(e, ReasoningDelta) for e in events[first_text:])


async def test_history_is_sent_in_order_with_its_roles(fake, adapter):
    turns = [
        Turn("user", "Hi"),
        Turn("assistant", "Hello!"),
        Turn("user", "Explain SSE"),
    ]

    await collect(adapter, ask(turns=turns))

    (recorded,) = fake.requests("openai")
    assert recorded.body["input"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Explain SSE"},
    ]


async def test_instructions_model_and_no_storage_are_sent(fake, adapter):
    await collect(adapter, ask(instructions="Answer in Russian.", max_output_tokens=2000))

    body = fake.requests("openai")[0].body
    assert body["instructions"] == "Answer in Russian."
    assert body["model"] == "gpt-6.1-sol"
    assert body["store"] is False
    assert body["max_output_tokens"] == 2000


async def test_reasoning_effort_asks_for_an_automatic_summary(fake, adapter):
    await collect(adapter, ask(options={"reasoning_effort": "high"}))

    assert fake.requests("openai")[0].body["reasoning"] == {"effort": "high", "summary": "auto"}


async def test_reasoning_effort_none_asks_for_no_summary(fake, adapter):
    await collect(adapter, ask(options={"reasoning_effort": "none"}))

    assert fake.requests("openai")[0].body["reasoning"] == {"effort": "none"}


async def test_no_reasoning_effort_sends_no_reasoning(fake, adapter):
    await collect(adapter, ask())

    assert "reasoning" not in fake.requests("openai")[0].body


async def test_api_key_is_sent_as_a_bearer_token(fake, adapter):
    await collect(adapter, ask())

    assert fake.requests("openai")[0].headers["authorization"] == "Bearer sk-openai-test"


@both_modes
async def test_long_answer_arrives_whole(fake, adapter, stream):
    fake.script("openai", fault="long", long_chars=9000, chunks=7)

    events = await collect(adapter, ask(stream))

    assert len(text_of(events)) == 9000


@both_modes
async def test_answer_cut_by_max_output_tokens_keeps_what_came(fake, adapter, stream):
    fake.script("openai", text="0123456789", fault="max_output_tokens")

    events = await collect(adapter, ask(stream, max_output_tokens=5))

    assert text_of(events) == "01234"
    assert isinstance(events[-1], Usage)


@both_modes
async def test_server_error_is_reported_as_unavailable(fake, adapter, stream):
    fake.script("openai", fault="http_500")

    with pytest.raises(ProviderUnavailable):
        await collect(adapter, ask(stream))


@both_modes
async def test_rate_limit_is_reported_with_the_retry_delay(fake, adapter, stream):
    fake.script("openai", fault="http_429", retry_after_s=7)

    with pytest.raises(ProviderRateLimited) as caught:
        await collect(adapter, ask(stream))

    assert caught.value.details["retry_after_s"] == 7


async def test_rate_limit_is_retried_once_after_the_servers_delay(fake):
    fake.script("openai", fault="http_429", fault_count=1, retry_after_s=0.05)
    client = build_client(base_url=fake.base_url("openai"), api_key="sk-test", max_retries=1)
    adapter = OpenAIResponsesAdapter(client)
    try:
        events = await collect(adapter, ask())
    finally:
        await adapter.aclose()

    assert text_of(events) == "Hello! This is the fake provider answering."
    assert len(fake.requests("openai")) == 2


@both_modes
async def test_slow_provider_runs_into_the_deadline(fake, adapter, stream):
    fake.script("openai", fault="slow", slow_s=5)
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        await collect(adapter, ask(stream, timeout_s=0.3))

    assert time.monotonic() - started < 2


async def test_stall_between_deltas_runs_into_the_deadline(fake, adapter):
    fake.script("openai", chunks=3, chunk_delay_s=5)

    with pytest.raises(ProviderTimeout):
        await collect(adapter, ask(timeout_s=0.3))


async def test_read_timeout_of_the_client_is_reported_as_timeout(fake):
    fake.script("openai", fault="slow", slow_s=5)
    client = build_client(
        base_url=fake.base_url("openai"), api_key="sk-test", max_retries=0, read_timeout_s=0.2
    )
    adapter = OpenAIResponsesAdapter(client)
    try:
        with pytest.raises(ProviderTimeout):
            await collect(adapter, ask(timeout_s=10))
    finally:
        await adapter.aclose()


@both_modes
async def test_malformed_answer_is_a_provider_error(fake, adapter, stream):
    fake.script("openai", fault="malformed")

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask(stream))

    assert type(caught.value) is ProviderError


async def test_stream_ending_before_completion_is_a_provider_error(fake, adapter):
    fake.script("openai", fault="truncated")

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask())

    assert type(caught.value) is ProviderError


@both_modes
@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("server_error", ProviderUnavailable),
        ("rate_limit_exceeded", ProviderRateLimited),
        ("vector_store_timeout", ProviderError),
    ],
)
async def test_failed_run_is_reported_by_its_code(fake, adapter, stream, code, error):
    fake.script("openai", fault="failed", error_code=code)

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask(stream))

    assert type(caught.value) is error


async def test_error_event_in_the_stream_is_reported_by_its_code(fake, adapter):
    fake.script("openai", fault="error_event", error_code="rate_limit_exceeded")

    with pytest.raises(ProviderRateLimited):
        await collect(adapter, ask())


@both_modes
async def test_content_filter_is_a_refusal(fake, adapter, stream):
    fake.script("openai", fault="content_filter")

    with pytest.raises(ContentRefused):
        await collect(adapter, ask(stream))


@both_modes
async def test_refusal_by_the_model_is_a_refusal(fake, adapter, stream):
    fake.script("openai", fault="refusal")

    with pytest.raises(ContentRefused):
        await collect(adapter, ask(stream))


@both_modes
async def test_context_length_exceeded_is_context_too_long(fake, adapter, stream):
    fake.script("openai", fault="context_length_exceeded")

    with pytest.raises(ContextTooLong):
        await collect(adapter, ask(stream))


@both_modes
async def test_answers_one_after_another_share_one_connection(fake, adapter, stream):
    # Closing a stream before the body's end closes its connection: a new TLS handshake each.
    for _ in range(3):
        assert text_of(await collect(adapter, ask(stream)))

    assert len(fake.requests("openai")) == 3
    assert fake.connections("openai") == 1

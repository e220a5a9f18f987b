"""The DeepSeek Chat Completions adapter, through the real SDK, against the fake on loopback."""

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
from backend.services.providers.chat_completions import ChatCompletionsAdapter
from backend.services.providers.client import build_client
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
async def adapter(fake: FakeProviders) -> AsyncIterator[ChatCompletionsAdapter]:
    client = build_client(
        base_url=fake.base_url("deepseek"), api_key="sk-deepseek-test", max_retries=0
    )
    adapter = ChatCompletionsAdapter(client)
    yield adapter
    await adapter.aclose()


def ask(stream: bool = True, **fields: Any) -> ProviderRequest:
    defaults: dict[str, Any] = {
        "api_model": "deepseek-flash",
        "instructions": "You are a helpful Telegram assistant.",
        "turns": [Turn("user", "Explain SSE")],
        "timeout_s": 5.0,
    }
    return ProviderRequest(**{**defaults, **fields, "stream": stream})


async def collect(adapter: ChatCompletionsAdapter, request: ProviderRequest) -> list[ProviderEvent]:
    return [event async for event in adapter.answer(request)]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


@both_modes
async def test_answer_text_is_assembled(fake, adapter, stream):
    fake.script("deepseek", text="SSE keeps one HTTP response open.", chunks=4)

    events = await collect(adapter, ask(stream))

    assert text_of(events) == "SSE keeps one HTTP response open."


@both_modes
async def test_usage_is_reported_with_cache_hits_and_reasoning_tokens(fake, adapter, stream):
    fake.script("deepseek", input_tokens=10, output_tokens=5, cached_tokens=8, reasoning_tokens=3)

    events = await collect(adapter, ask(stream))

    assert events[-1] == Usage(
        input_tokens=10, output_tokens=5, cached_input_tokens=8, reasoning_tokens=3
    )


@both_modes
async def test_reasoning_is_kept_apart_from_the_answer(fake, adapter, stream):
    fake.script("deepseek", text="The answer.", reasoning="Let me think about SSE.")

    events = await collect(adapter, ask(stream, options={"thinking": True}))

    assert reasoning_of(events) == "Let me think about SSE."
    assert text_of(events) == "The answer."


async def test_thinking_is_switched_on_when_asked(fake, adapter):
    await collect(adapter, ask(options={"thinking": True}))

    assert fake.requests("deepseek")[0].body["thinking"] == {"type": "enabled"}


async def test_thinking_is_switched_off_unless_asked(fake, adapter):
    fake.script("deepseek", reasoning="Hidden thoughts.")

    events = await collect(adapter, ask())

    assert fake.requests("deepseek")[0].body["thinking"] == {"type": "disabled"}
    assert reasoning_of(events) == ""


async def test_consecutive_turns_of_one_role_are_merged(fake, adapter):
    turns = [
        Turn("user", "Hi"),
        Turn("user", "Are you there?"),
        Turn("assistant", "Yes."),
        Turn("assistant", "How can I help?"),
        Turn("user", "Explain SSE"),
    ]

    await collect(adapter, ask(turns=turns, instructions="Be brief."))

    assert fake.requests("deepseek")[0].body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi\n\nAre you there?"},
        {"role": "assistant", "content": "Yes.\n\nHow can I help?"},
        {"role": "user", "content": "Explain SSE"},
    ]


async def test_reasoning_effort_and_max_tokens_are_sent(fake, adapter):
    await collect(
        adapter, ask(options={"thinking": True, "reasoning_effort": "max"}, max_output_tokens=800)
    )

    body = fake.requests("deepseek")[0].body
    assert body["reasoning_effort"] == "max"
    assert body["max_tokens"] == 800
    assert body["model"] == "deepseek-flash"


async def test_streamed_answer_asks_for_usage(fake, adapter):
    await collect(adapter, ask())

    assert fake.requests("deepseek")[0].body["stream_options"] == {"include_usage": True}


@both_modes
async def test_long_answer_arrives_whole(fake, adapter, stream):
    fake.script("deepseek", fault="long", long_chars=9000, chunks=9)

    events = await collect(adapter, ask(stream))

    assert len(text_of(events)) == 9000


@both_modes
async def test_content_filter_is_a_refusal(fake, adapter, stream):
    fake.script("deepseek", fault="content_filter")

    with pytest.raises(ContentRefused):
        await collect(adapter, ask(stream))


@both_modes
async def test_context_length_exceeded_is_context_too_long(fake, adapter, stream):
    fake.script("deepseek", fault="context_length_exceeded")

    with pytest.raises(ContextTooLong):
        await collect(adapter, ask(stream))


@both_modes
async def test_server_error_is_reported_as_unavailable(fake, adapter, stream):
    fake.script("deepseek", fault="http_500")

    with pytest.raises(ProviderUnavailable):
        await collect(adapter, ask(stream))


@both_modes
async def test_lack_of_capacity_mid_answer_is_reported_as_unavailable(fake, adapter, stream):
    fake.script("deepseek", fault="failed")

    with pytest.raises(ProviderUnavailable):
        await collect(adapter, ask(stream))


@both_modes
async def test_rate_limit_is_reported_as_rate_limited(fake, adapter, stream):
    fake.script("deepseek", fault="http_429")

    with pytest.raises(ProviderRateLimited):
        await collect(adapter, ask(stream))


@both_modes
async def test_slow_provider_runs_into_the_deadline(fake, adapter, stream):
    fake.script("deepseek", fault="slow", slow_s=5)

    with pytest.raises(ProviderTimeout):
        await collect(adapter, ask(stream, timeout_s=0.3))


@both_modes
async def test_malformed_answer_is_a_provider_error(fake, adapter, stream):
    fake.script("deepseek", fault="malformed")

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask(stream))

    assert type(caught.value) is ProviderError


async def test_stream_ending_before_a_finish_reason_is_a_provider_error(fake, adapter):
    fake.script("deepseek", fault="truncated")

    with pytest.raises(ProviderError) as caught:
        await collect(adapter, ask())

    assert type(caught.value) is ProviderError


@both_modes
async def test_answers_one_after_another_share_one_connection(fake, adapter, stream):
    # Closing a stream before the body's end closes its connection: a new TLS handshake each.
    for _ in range(3):
        assert text_of(await collect(adapter, ask(stream)))

    assert len(fake.requests("deepseek")) == 3
    assert fake.connections("deepseek") == 1

"""POST /api/v1/messages end to end: real adapters, a fake provider on loopback, real PostgreSQL."""

import asyncio
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backend.models.database import CreditHistory, MessageLog, User
from backend.services.subscription_service import SubscriptionService
from backend.tests.fixtures import (
    answering_client,
    fast_catalog,
    next_telegram_id,
    provider_settings,
)


async def new_user(api, model: str | None = None) -> int:
    telegram_id = next_telegram_id()
    created = await api.post("/api/v1/users", json={"telegram_id": telegram_id, "first_name": "T"})
    assert created.status_code == 201
    if model:
        changed = await api.patch(f"/api/v1/users/{telegram_id}", json={"model": model})
        assert changed.status_code == 200
    return telegram_id


async def ask(api, telegram_id: int, text: str = "Hi there", **extra):
    return await api.post(
        "/api/v1/messages", json={"telegram_id": telegram_id, "text": text, **extra}
    )


async def stream(api, telegram_id: int, text: str = "Hi there") -> list[dict]:
    events = []
    async with api.stream(
        "POST", "/api/v1/messages", json={"telegram_id": telegram_id, "text": text, "stream": True}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        async for line in response.aiter_lines():
            if line:
                events.append(json.loads(line))
    return events


async def message_rows(committing_sessions, telegram_id: int) -> list[MessageLog]:
    async with committing_sessions() as session:
        rows = await session.scalars(
            select(MessageLog)
            .join(User, User.id == MessageLog.user_id)
            .where(User.telegram_id == telegram_id)
            .order_by(MessageLog.id)
        )
        return list(rows)


async def test_answer_in_json_mode_is_complete_and_charged_once(
    api, fake_providers, committing_sessions
):
    fake_providers.script("openai", text="Paris is the capital of France.", chunks=4)
    telegram_id = await new_user(api)
    response = await ask(api, telegram_id, "Capital of France?")
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "Paris is the capital of France."
    assert body["free_messages_left"] == 9
    assert body["usage"] == {
        "input_tokens": 12,
        "output_tokens": 34,
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
    }
    [row] = await message_rows(committing_sessions, telegram_id)
    assert (row.status, row.charged, row.response_text) == ("success", True, body["text"])
    assert (row.input_tokens, row.output_tokens) == (12, 34)
    # 12 input at $1/M + 34 output at $5/M (gpt-6.1-terra, the Instant model)
    assert row.cost_usd == Decimal("0.000182")
    assert row.latency_ms is not None and row.api_model == "gpt-6.1-terra"


async def test_streamed_answer_arrives_chunk_by_chunk(api, fake_providers):
    fake_providers.script("openai", text="one two three four", chunks=4)
    telegram_id = await new_user(api)
    events = await stream(api, telegram_id)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert len(deltas) == 4
    assert "".join(deltas) == events[-1]["text"] == "one two three four"
    assert events[-1]["free_messages_left"] == 9


async def test_history_is_sent_in_roles_and_order_with_instructions(api, fake_providers):
    fake_providers.script("openai", text="A1")
    telegram_id = await new_user(api)
    await ask(api, telegram_id, "Q1")
    fake_providers.script("openai", text="A2")
    await ask(api, telegram_id, "Q2")
    body = fake_providers.requests("openai")[-1].body
    assert body["input"] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert "Pomogator" in body["instructions"]
    assert body["model"] == "gpt-6.1-terra"
    assert body["reasoning"]["effort"] == "none"


async def test_reset_starts_a_clean_conversation(api, fake_providers):
    telegram_id = await new_user(api)
    await ask(api, telegram_id, "Remember the number 42")
    reset = await api.post(f"/api/v1/conversations/{telegram_id}/reset")
    assert reset.status_code == 200
    await ask(api, telegram_id, "What number?")
    assert fake_providers.requests("openai")[-1].body["input"] == [
        {"role": "user", "content": "What number?"}
    ]


async def test_switching_model_keeps_the_conversation(api, fake_providers):
    fake_providers.script("openai", text="Bonjour")
    telegram_id = await new_user(api)
    await ask(api, telegram_id, "Say hello in French")
    await api.patch(f"/api/v1/users/{telegram_id}", json={"model": "deepseek-standard"})
    await ask(api, telegram_id, "And in German?")
    messages = fake_providers.requests("deepseek")[-1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Bonjour"


async def test_perplexity_sources_and_reported_cost_are_kept(
    api, fake_providers, committing_sessions
):
    sources = [
        {"title": "Example", "url": "https://example.com/a", "date": "2026-11-30", "snippet": "s"},
        {"title": "Other", "url": "https://example.org/b", "snippet": "t"},
    ]
    fake_providers.script("perplexity", text="Found it [1][2].", sources=sources, cost_usd=0.0123)
    telegram_id = await new_user(api, "perplexity-search")
    body = (await ask(api, telegram_id, "news?")).json()
    assert [s["url"] for s in body["sources"]] == ["https://example.com/a", "https://example.org/b"]
    assert Decimal(body["cost_usd"]) == Decimal("0.0123")
    request = fake_providers.requests("perplexity")[-1].body
    assert request["effort"] == "fast" and "model" not in request
    [row] = await message_rows(committing_sessions, telegram_id)
    assert row.sources[0]["url"] == "https://example.com/a"


async def test_deepseek_reasoning_is_separate_from_the_answer(api, fake_providers):
    fake_providers.script(
        "deepseek", text="The answer is 4.", reasoning="2+2 means adding two twos."
    )
    telegram_id = await new_user(api, "deepseek-thinking")
    events = await stream(api, telegram_id, "2+2?")
    done = events[-1]
    assert done["text"] == "The answer is 4."
    assert done["reasoning"] == "2+2 means adding two twos."
    assert any(e["type"] == "reasoning" for e in events)
    request = fake_providers.requests("deepseek")[-1].body
    assert request["thinking"] == {"type": "enabled"} and request["model"] == "deepseek-v4-pro"


async def test_long_history_is_trimmed_and_the_bot_is_told(api, fake_providers):
    fake_providers.script("openai", text="x" * 150)
    telegram_id = await new_user(api, "chatgpt-thinking")  # 60-token history budget in tests
    first = (await ask(api, telegram_id, "a" * 30)).json()
    second = (await ask(api, telegram_id, "b" * 30)).json()
    assert first["trimmed"] is False
    assert second["trimmed"] is True
    assert fake_providers.requests("openai")[-1].body["input"] == [
        {"role": "user", "content": "b" * 30}
    ]


FAILURES = [
    ("openai", None, {"fault": "http_500"}, 503, "provider_unavailable"),
    ("openai", None, {"fault": "http_429", "retry_after_s": 0.01}, 503, "provider_rate_limited"),
    ("openai", None, {"fault": "slow", "slow_s": 10}, 504, "provider_timeout"),
    ("openai", None, {"fault": "malformed"}, 502, "provider_error"),
    ("openai", None, {"fault": "content_filter"}, 422, "content_refused"),
    ("openai", None, {"fault": "context_length_exceeded"}, 422, "context_too_long"),
    ("perplexity", "perplexity-search", {"fault": "failed"}, 503, "provider_unavailable"),
    ("deepseek", "deepseek-standard", {"fault": "http_500"}, 503, "provider_unavailable"),
]


@pytest.mark.parametrize(("flavour", "model", "script", "status", "code"), FAILURES)
async def test_failed_answer_is_refunded_and_logged(
    api, fake_providers, committing_sessions, flavour, model, script, status, code
):
    fake_providers.script(flavour, **script)
    telegram_id = await new_user(api, model)
    response = await ask(api, telegram_id)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["refunded"] is True
    assert error["details"]["free_messages_left"] == 10
    [row] = await message_rows(committing_sessions, telegram_id)
    assert (row.status, row.error_code) == ("failed", code)
    credits = (await api.get(f"/api/v1/credits/{telegram_id}")).json()
    assert credits["free_messages_left"] == 10
    assert [e["kind"] for e in credits["entries"]] == ["refund", "use", "grant"]


async def test_failure_mid_stream_is_an_error_event_after_refund(api, fake_providers):
    fake_providers.script("openai", fault="truncated")
    telegram_id = await new_user(api)
    events = await stream(api, telegram_id)
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "provider_error"
    assert events[-1]["refunded"] is True and events[-1]["free_messages_left"] == 10


async def test_fifty_concurrent_messages_give_ten_answers_and_forty_refusals(api, fake_providers):
    fake_providers.script("openai", text="ok", first_delay_s=0.05)
    telegram_id = await new_user(api)
    responses = await asyncio.gather(*(ask(api, telegram_id, f"q{i}") for i in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10
    assert statuses.count(402) == 40
    assert all(
        r.json()["error"]["code"] == "quota_exhausted" for r in responses if r.status_code == 402
    )
    assert len(fake_providers.requests("openai")) == 10
    credits = (await api.get(f"/api/v1/credits/{telegram_id}?limit=200")).json()
    assert credits["free_messages_left"] == 0
    assert sum(e["delta"] for e in credits["entries"]) == credits["free_messages_left"]


async def test_quota_is_refused_before_any_provider_call(api, fake_providers):
    telegram_id = await new_user(api)
    for _ in range(10):
        assert (await ask(api, telegram_id)).status_code == 200
    calls = len(fake_providers.requests("openai"))
    refused = await ask(api, telegram_id)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "quota_exhausted"
    assert len(fake_providers.requests("openai")) == calls


async def test_vip_user_is_answered_past_ten_and_not_charged(
    api, fake_providers, committing_sessions, settings
):
    telegram_id = await new_user(api)
    async with committing_sessions() as session:
        await SubscriptionService(session, settings).extend(telegram_id)
    for _ in range(12):
        response = await ask(api, telegram_id)
        assert response.status_code == 200
    assert response.json()["is_vip"] is True
    assert response.json()["free_messages_left"] == 10
    async with committing_sessions() as session:
        uses = await session.scalar(
            select(func.count())
            .select_from(CreditHistory)
            .join(User, User.id == CreditHistory.user_id)
            .where(User.telegram_id == telegram_id, CreditHistory.kind == "use")
        )
    assert uses == 0


async def test_text_over_the_limit_is_refused_uncharged(api, fake_providers, settings):
    telegram_id = await new_user(api)
    response = await ask(api, telegram_id, "x" * (settings.max_message_chars + 1))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "message_too_long"
    assert fake_providers.requests("openai") == []
    assert (await api.get(f"/api/v1/users/{telegram_id}")).json()["free_messages_left"] == 10


async def test_repeated_client_message_id_is_answered_and_charged_once(api, fake_providers):
    telegram_id = await new_user(api)
    first = await ask(api, telegram_id, "hello", client_message_id="chat1:msg7")
    again = await ask(api, telegram_id, "hello", client_message_id="chat1:msg7")
    assert first.status_code == again.status_code == 200
    assert again.json()["message_id"] == first.json()["message_id"]
    assert again.json()["text"] == first.json()["text"]
    assert len(fake_providers.requests("openai")) == 1
    assert again.json()["free_messages_left"] == 9


async def test_unconfigured_provider_is_shown_unavailable_and_never_charged(
    settings, catalog, engine, fake_providers
):
    client, registry = await answering_client(
        provider_settings(settings, fake_providers, without=("deepseek",)),
        fast_catalog(catalog),
        engine,
    )
    try:
        menu = (await client.get("/api/v1/models")).json()
        availability = {p["key"]: p["available"] for p in menu["providers"]}
        assert availability == {"chatgpt": True, "perplexity": True, "deepseek": False}
        telegram_id = await new_user(client, "deepseek-standard")
        response = await ask(client, telegram_id)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "provider_not_configured"
        assert (await client.get(f"/api/v1/users/{telegram_id}")).json()["free_messages_left"] == 10
    finally:
        await client.aclose()
        await registry.aclose()


async def test_models_menu_lists_eight_models_with_labels(api):
    menu = (await api.get("/api/v1/models")).json()
    labels = [(p["label"], m["label"]) for p in menu["providers"] for m in p["models"]]
    assert len(labels) == 8
    assert ("Perplexity", "Research") in labels and ("DeepSeek", "Standard") in labels
    assert menu["default_model"] == "chatgpt-instant"

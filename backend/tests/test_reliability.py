"""Nothing handled twice, nobody hammering a failing provider, fair use, /forget, retention."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from backend.models.database import CreditHistory, MessageLog, User
from backend.services.subscription_service import SubscriptionService
from backend.services.sweeper import tidy_once
from backend.tests.fixtures import answering_client, fast_catalog, provider_settings
from backend.tests.test_messages import ask, message_rows, new_user


@pytest.fixture
async def backends(settings, catalog, engine, fake_providers):
    """Backends with some settings changed, each closed after the test."""
    opened = []

    async def make(**changes):
        changed = provider_settings(settings, fake_providers).model_copy(update=changes)
        client, registry = await answering_client(changed, fast_catalog(catalog), engine)
        opened.append((client, registry))
        return client

    yield make
    for client, registry in opened:
        await client.aclose()
        await registry.aclose()


async def free_left(api, telegram_id: int) -> int:
    return (await api.get(f"/api/v1/users/{telegram_id}")).json()["free_messages_left"]


# --- update claims ----------------------------------------------------------------------------


async def test_an_update_is_claimed_once_however_many_deliveries_race(api):
    update_id = 900_000_000 + id(api) % 1_000_000
    responses = await asyncio.gather(
        *(api.post("/api/v1/updates/claim", json={"update_id": update_id}) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [200] * 5
    assert sorted(r.json()["claimed"] for r in responses) == [False] * 4 + [True]
    again = await api.post("/api/v1/updates/claim", json={"update_id": update_id})
    assert again.json() == {"claimed": False}


async def test_old_claims_are_forgotten_by_the_sweeper(api, committing_sessions, settings):
    from backend.models.database import UpdateClaim

    update_id = 800_000_000 + id(settings) % 1_000_000
    await api.post("/api/v1/updates/claim", json={"update_id": update_id})
    async with committing_sessions() as session:
        await session.execute(
            update(UpdateClaim)
            .where(UpdateClaim.update_id == update_id)
            .values(claimed_at=func.now() - timedelta(days=8))
        )
        await session.commit()
    await tidy_once(committing_sessions, settings)
    claimed = await api.post("/api/v1/updates/claim", json={"update_id": update_id})
    assert claimed.json() == {"claimed": True}


# --- the circuit breaker ----------------------------------------------------------------------


async def test_failing_provider_opens_the_circuit_and_is_left_alone(backends, fake_providers):
    api = await backends(breaker_failures=2, breaker_cooldown_s=60)
    fake_providers.script("openai", fault="http_500")
    telegram_id = await new_user(api)
    for _ in range(2):
        failed = await ask(api, telegram_id)
        assert failed.status_code == 503
        assert failed.json()["error"]["details"]["refunded"] is True
    calls = len(fake_providers.requests("openai"))

    refused = await ask(api, telegram_id)

    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["code"] == "provider_unavailable"
    assert error["details"]["breaker_open"] is True
    assert error["details"]["provider"] == "chatgpt"
    assert 1 <= error["details"]["retry_after_s"] <= 60
    assert len(fake_providers.requests("openai")) == calls  # not called at all
    assert await free_left(api, telegram_id) == 10
    menu = (await api.get("/api/v1/models")).json()
    available = {p["key"]: p["available"] for p in menu["providers"]}
    assert available == {"chatgpt": False, "perplexity": True, "deepseek": True}
    # Other providers are unaffected.
    await api.patch(f"/api/v1/users/{telegram_id}", json={"model": "deepseek-standard"})
    assert (await ask(api, telegram_id)).status_code == 200


async def test_after_the_cooldown_a_success_closes_the_circuit(backends, fake_providers):
    api = await backends(breaker_failures=1, breaker_cooldown_s=0.2)
    fake_providers.script("openai", fault="http_500")
    telegram_id = await new_user(api)
    assert (await ask(api, telegram_id)).status_code == 503
    assert (await ask(api, telegram_id)).json()["error"]["details"]["breaker_open"] is True
    fake_providers.script("openai")
    await asyncio.sleep(0.3)

    assert (await ask(api, telegram_id)).status_code == 200
    assert (await ask(api, telegram_id)).status_code == 200


async def test_refused_content_does_not_count_against_the_provider(backends, fake_providers):
    api = await backends(breaker_failures=2, breaker_cooldown_s=60)
    fake_providers.script("openai", fault="content_filter")
    telegram_id = await new_user(api)
    for _ in range(3):
        response = await ask(api, telegram_id)
        assert response.json()["error"]["code"] == "content_refused"


# --- fair use ---------------------------------------------------------------------------------


async def test_a_user_sending_too_fast_is_asked_to_wait_and_not_charged(backends, fake_providers):
    api = await backends(user_messages_per_minute=3)
    telegram_id = await new_user(api)
    for _ in range(3):
        assert (await ask(api, telegram_id)).status_code == 200
    calls = len(fake_providers.requests())

    refused = await ask(api, telegram_id)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert 1 <= error["details"]["retry_after_s"] <= 60
    assert len(fake_providers.requests()) == calls
    assert await free_left(api, telegram_id) == 7


async def test_vip_past_the_daily_fair_use_cap_is_refused(
    backends, committing_sessions, settings, fake_providers
):
    api = await backends(vip_daily_messages=2, user_messages_per_minute=0)
    telegram_id = await new_user(api)
    async with committing_sessions() as session:
        await SubscriptionService(session, settings).extend(telegram_id)
    for _ in range(2):
        assert (await ask(api, telegram_id)).status_code == 200

    refused = await ask(api, telegram_id)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["details"]["limit"], error["details"]["period"]) == (
        "fair_use_exceeded",
        2,
        "day",
    )
    assert 0 < error["details"]["retry_after_s"] <= 86_400


# --- /forget and retention --------------------------------------------------------------------


async def test_forget_erases_texts_keeps_billing_and_starts_afresh(
    api, fake_providers, committing_sessions
):
    fake_providers.script("openai", text="Remembered answer.")
    telegram_id = await new_user(api)
    await ask(api, telegram_id, "My secret question")
    await ask(api, telegram_id, "Another one")

    forgot = await api.post(f"/api/v1/users/{telegram_id}/forget")

    assert forgot.status_code == 200
    assert forgot.json() == {"forgotten": 2}
    rows = await message_rows(committing_sessions, telegram_id)
    assert [(r.request_text, r.response_text) for r in rows] == [(None, None), (None, None)]
    assert all(r.status == "success" and r.output_tokens and r.cost_usd for r in rows)
    async with committing_sessions() as session:
        ledger = await session.scalars(
            select(CreditHistory.delta)
            .join(User, User.id == CreditHistory.user_id)
            .where(User.telegram_id == telegram_id)
        )
        assert sorted(ledger) == [-1, -1, 10]
    await ask(api, telegram_id, "Fresh start")
    assert fake_providers.requests("openai")[-1].body["input"] == [
        {"role": "user", "content": "Fresh start"}
    ]


async def test_forget_for_an_unknown_user_is_404(api):
    response = await api.post("/api/v1/users/123456789012/forget")
    assert response.status_code == 404


async def test_texts_past_the_retention_period_are_erased(
    api, committing_sessions, settings, fake_providers
):
    telegram_id = await new_user(api)
    await ask(api, telegram_id, "Old question")
    await ask(api, telegram_id, "New question")
    old, new = await message_rows(committing_sessions, telegram_id)
    async with committing_sessions() as session:
        await session.execute(
            update(MessageLog)
            .where(MessageLog.id == old.id)
            .values(created_at=func.now() - timedelta(days=31))
        )
        await session.commit()

    await tidy_once(committing_sessions, settings.model_copy(update={"message_retention_days": 30}))

    old, new = await message_rows(committing_sessions, telegram_id)
    assert (old.request_text, old.response_text, old.cost_usd is not None) == (None, None, True)
    assert new.request_text == "New question"


# --- request size -----------------------------------------------------------------------------


async def test_body_over_the_limit_is_refused_before_it_is_read(backends):
    api = await backends(max_request_bytes=64 * 1024)
    telegram_id = await new_user(api)
    huge = {"telegram_id": telegram_id, "text": "x" * (70 * 1024)}
    response = await api.post("/api/v1/messages", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_chunked_body_over_the_limit_is_refused(backends):
    api = await backends(max_request_bytes=64 * 1024)

    async def chunks():
        yield b'{"telegram_id": 1, "text": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    response = await api.post(
        "/api/v1/messages", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_the_same_message_posted_five_times_at_once_is_answered_and_charged_once(
    api, fake_providers
):
    telegram_id = await new_user(api)
    responses = await asyncio.gather(
        *(ask(api, telegram_id, "Once only", client_message_id="42:7") for _ in range(5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}, [r.text for r in responses]
    answer_calls = [r for r in fake_providers.requests("openai") if r.path.endswith("/responses")]
    assert len(answer_calls) == 1
    assert await free_left(api, telegram_id) == 9

"""The bot's backend client against the real backend app: the two cannot drift apart."""

import pytest

from backend.tests.fixtures import TEST_TOKEN
from bot.services.backend import BackendClient, BackendError, BackendUnavailable
from bot.services.schemas import DoneEvent, ErrorEvent, StartEvent


async def register(env, user_id):
    return await env.backend.register(
        user_id, username="anna", first_name="Anna", last_name=None, language_code="ru"
    )


async def test_register_and_profile_parse(env, user_id):
    created = await register(env, user_id)
    again = await env.backend.profile(user_id)
    assert created.telegram_id == again.telegram_id == user_id
    assert (again.language, again.free_messages_left, again.free_messages_limit) == ("ru", 10, 10)
    assert again.model == "chatgpt-instant" and again.show_reasoning is True


async def test_every_update_field_round_trips(env, user_id):
    await register(env, user_id)
    profile = await env.backend.update_user(user_id, model="perplexity-research")
    assert (profile.provider, profile.model) == ("perplexity", "perplexity-research")
    profile = await env.backend.update_user(user_id, language="en", show_reasoning=False)
    assert (profile.language, profile.show_reasoning) == ("en", False)


async def test_catalog_parses_with_availability(env):
    catalog = await env.backend.models()
    assert [p.key for p in catalog.providers] == ["chatgpt", "perplexity", "deepseek"]
    assert catalog.find("deepseek-thinking") is not None
    assert all(p.available for p in catalog.providers)


async def test_streamed_answer_parses_into_bot_events(env, user_id):
    await register(env, user_id)
    env.fake.script("openai", text="Hello from the contract.", chunks=2)
    events = [e async for e in env.backend.ask(user_id, "hi", "c:1")]
    assert isinstance(events[0], StartEvent)
    assert isinstance(events[-1], DoneEvent)
    assert events[-1].text == "Hello from the contract."
    await env.backend.reset_conversation(user_id)


async def test_failed_answer_parses_as_error_event(env, user_id):
    await register(env, user_id)
    env.fake.script("openai", fault="http_500")
    events = [e async for e in env.backend.ask(user_id, "hi")]
    assert isinstance(events[-1], ErrorEvent)
    assert (events[-1].code, events[-1].refunded) == ("provider_unavailable", True)


async def test_backend_error_codes_reach_the_bot(env, user_id):
    with pytest.raises(BackendError) as missing:
        await env.backend.profile(user_id)
    assert (missing.value.code, missing.value.status) == ("user_not_found", 404)
    await register(env, user_id)
    with pytest.raises(BackendError) as unknown:
        await env.backend.update_user(user_id, model="gpt-1")
    assert unknown.value.code == "unknown_model"


async def test_wrong_token_is_refused(env):
    transport = env.backend._http._transport
    client = BackendClient("http://backend.test", TEST_TOKEN + "x", transport=transport)
    with pytest.raises(BackendError) as refused:
        await client.models()
    assert refused.value.code == "unauthorized"


async def test_unreachable_backend_is_unavailable_within_seconds():
    client = BackendClient("http://127.0.0.1:9", "token")
    with pytest.raises(BackendUnavailable):
        await client.models()
    await client.aclose()

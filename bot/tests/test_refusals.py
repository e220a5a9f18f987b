"""Refusals before an answer (too fast, fair use, a provider's circuit open) and a backend that
is down: the user is told what happened and when to come back, and nothing is charged."""

import socket

import httpx
import pytest
from aiogram_i18n import I18nContext

from bot.handlers.chat import error_sentence, wait_text
from bot.services.backend import BackendClient
from bot.tests.conftest import backend_client, replica
from bot.tests.telegram import callback_update, message_update
from bot.tests.test_payments import open_offer, paid_update

TRY_AGAIN = "Please try again in a minute"


def i18n_for(dp, locale: str) -> I18nContext:
    middleware = dp["i18n_middleware"]
    return I18nContext(locale=locale, core=middleware.core, manager=middleware.manager, data={})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("code", "details", "english", "russian"),
    [
        ("rate_limited", {"retry_after_s": 42}, "wait 42 s", "Подождите 42 с"),
        (
            "fair_use_exceeded",
            {"limit": 500, "period": "day", "retry_after_s": 3 * 3600 + 1200},
            "500 messages in the last day — the fair-use limit of VIP. "
            "Please continue in 3 h 20 min",
            "отправили 500 сообщений — это предел честного использования VIP. "
            "Продолжим через 3 ч 20 мин",
        ),
        (
            "provider_unavailable",
            {"provider": "openai", "breaker_open": True, "retry_after_s": 30},
            "paused requests to it for 30 s",
            "приостановил запросы к нему на 30 с",
        ),
        (
            "provider_unavailable",
            {"provider": "openai", "breaker_open": True},
            "choose another model",
            "выберите другую модель",
        ),
    ],
)
async def test_new_refusals_have_sentences_in_both_languages(env, code, details, english, russian):
    for locale, expected in (("en", english), ("ru", russian)):
        i18n = i18n_for(env.dp, locale)
        sentence = error_sentence(code, i18n, **details)
        assert sentence != i18n.get("error-generic")
        assert expected in sentence, (locale, sentence)


async def test_waits_are_shown_in_the_largest_sensible_unit(env):
    i18n = i18n_for(env.dp, "en")
    assert [wait_text(s, i18n) for s in (0, 0.2, 59, 60, 61, 3599, 3600, 7261)] == [
        "1 s",
        "1 s",
        "59 s",
        "1 min",
        "2 min",
        "1 h",
        "1 h",
        "2 h 2 min",
    ]


async def test_second_message_within_the_minute_is_told_to_wait(
    settings, catalog, engine, fake_providers, user_id
):
    async with (
        backend_client(
            settings, catalog, engine, fake_providers, user_messages_per_minute=1
        ) as backend,
        replica(backend) as bot,
    ):
        fake_providers.script("openai", text="first answer")
        await bot.send(message_update(user_id, "one"))
        await bot.send(message_update(user_id, "two"))
        texts = bot.telegram.sent_texts()
        assert texts[0].strip() == "first answer"
        assert "faster than I can answer" in texts[-1] and "nothing was charged" in texts[-1]
        assert " s " in texts[-1] or " min " in texts[-1]
        assert len(fake_providers.requests("openai")) == 1
        assert (await backend.profile(user_id)).free_messages_left == 9


async def test_vip_past_the_daily_fair_use_cap_is_told_when_to_continue(
    settings, catalog, engine, fake_providers, user_id
):
    async with (
        backend_client(settings, catalog, engine, fake_providers, vip_daily_messages=1) as backend,
        replica(backend) as bot,
    ):
        payload = await open_offer(bot, user_id)
        await bot.send(paid_update(user_id, payload, f"fair-{user_id}"))
        fake_providers.script("openai", text="vip answer")
        await bot.send(message_update(user_id, "one"))
        await bot.send(message_update(user_id, "two"))
        refusal = bot.telegram.sent_texts()[-1]
        assert "fair-use limit" in refusal and "sent 1 message in the last day" in refusal
        assert "continue in" in refusal
        assert len(fake_providers.requests("openai")) == 1


async def test_open_circuit_suggests_another_model_and_charges_nothing(
    settings, catalog, engine, fake_providers, user_id
):
    async with (
        backend_client(settings, catalog, engine, fake_providers, breaker_failures=1) as backend,
        replica(backend) as bot,
    ):
        fake_providers.script("openai", fault="http_500")
        await bot.send(message_update(user_id, "first"))  # fails and opens the circuit
        asked = len(fake_providers.requests("openai"))
        await bot.send(message_update(user_id, "second"))
        refusal = bot.telegram.named("SendMessage")[-1]
        assert "paused requests to it" in refusal.text
        assert "choose another model" in refusal.text
        assert "🧠 Model" in [label for label, _ in refusal.buttons()]
        assert len(fake_providers.requests("openai")) == asked  # not asked again
        assert (await backend.profile(user_id)).free_messages_left == 10


async def test_unreachable_backend_tells_every_entry_point_to_try_again(user_id):
    down = BackendClient(f"http://127.0.0.1:{closed_port()}", "token")
    try:
        async with replica(down) as bot:
            for text in ("Hello?", "/start", "/status", "/forget", "/settings"):
                await bot.send(message_update(user_id, text))
            await bot.send(callback_update(user_id, "m:status"))
            await bot.send(callback_update(user_id, "fg:yes"))
            texts = [c.text for c in bot.telegram.named("SendMessage", "AnswerCallbackQuery")]
            said = [t for t in texts if TRY_AGAIN in t]
            # /forget only asks first: it needs no backend until confirmed.
            assert len(said) == 6, texts
    finally:
        await down.aclose()


async def test_database_unavailable_tells_the_user_to_try_again(user_id):
    def database_down(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "database_unavailable", "message": "The database is down."}}
        return httpx.Response(503, json=body)

    down = BackendClient(
        "http://backend.test", "token", transport=httpx.MockTransport(database_down)
    )
    try:
        async with replica(down) as bot:
            await bot.send(message_update(user_id, "Hello?"))
            await bot.send(message_update(user_id, "/status"))
            await bot.send(callback_update(user_id, "fg:yes"))
            texts = [c.text for c in bot.telegram.named("SendMessage", "AnswerCallbackQuery")]
            assert len(texts) == 3 and all(TRY_AGAIN in t for t in texts), texts
    finally:
        await down.aclose()

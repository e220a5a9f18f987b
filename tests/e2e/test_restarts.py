"""Services stopped and started again: users are told, and nothing they had is lost or doubled.

The module has processes of its own (the `system` fixture is module-scoped), so stopping them
does not touch other modules; each test leaves both services running.
"""

import asyncio
import time
from datetime import UTC, datetime

from tests.e2e.conftest import System, TelegramUser, asked
from tests.e2e.payments import (
    answer_to,
    open_offer,
    pre_checkout_update,
    successful_payment_update,
    vip_until_dates,
)
from tests.e2e.test_journeys import DEFAULT_ANSWER

UNAVAILABLE = (
    "Pomogator is temporarily unavailable. Please try again in a minute — nothing was charged."
)
THANKS = "Thank you! ⭐ VIP is active until"


async def stop(system: System, *names: str) -> None:
    """SIGTERM the services, as `docker compose stop` does; each must exit cleanly."""
    for name in names:
        code = await system.stop_service(name)
        assert code in (0, -15), f"{name} exited with {code}:\n{system.service(name).tail()}"


async def test_question_while_the_backend_is_down_is_refused_then_answered_after_it_is_back(
    restored: System, user: TelegramUser
):
    system = restored
    await stop(system, "backend")
    question = f"Are you there? (user {user.id})"

    asked_at = time.monotonic()
    await user.send(question)
    refusal = await user.next_message()

    assert refusal.text == UNAVAILABLE
    assert time.monotonic() - asked_at < 5
    assert user.messages() == [refusal]
    await system.start_service("backend")
    answer = await user.ask(question)
    assert answer.text == DEFAULT_ANSWER
    assert system.answer_requests(question) == {"openai": 1}
    assert (await user.status()).startswith("Plan: free — 9 of 10 messages left.")


async def test_model_quota_and_conversation_survive_a_restart_of_both_services(
    restored: System, user: TelegramUser
):
    system = restored
    await user.choose_model("DeepSeek", "Standard")
    first = f"My name is Ida, remember it (user {user.id})"
    assert (await user.ask(first)).text == DEFAULT_ANSWER
    before = await user.status()
    assert before.splitlines() == [
        "Plan: free — 9 of 10 messages left.",
        "Model: DeepSeek · Standard",
    ]

    await stop(system, "bot", "backend")
    # Started together, as `docker compose up` does: the bot does not need the backend to start.
    await asyncio.gather(system.start_service("backend"), system.start_service("bot"))

    assert await user.status() == before
    second = f"What is my name? (user {user.id})"
    assert (await user.ask(second)).text == DEFAULT_ANSWER
    assert system.answer_requests(second) == {"deepseek": 1}
    [request] = [r for r in system.providers.requests("deepseek") if asked(r.body) == second]
    turns = [(t["role"], t["content"]) for t in request.body["messages"] if t["role"] != "system"]
    assert turns == [("user", first), ("assistant", DEFAULT_ANSWER), ("user", second)]
    assert (await user.status()).startswith("Plan: free — 8 of 10 messages left.")


async def test_payment_refused_while_the_backend_is_down_gives_vip_once_when_redelivered(
    restored: System, user: TelegramUser
):
    system = restored
    paid_since = datetime.now(UTC)
    offer = await open_offer(user)
    checkout = pre_checkout_update(user, offer.payload, offer.amount)
    await user.deliver(checkout)
    assert (await answer_to(user, checkout)).params["ok"] is True
    payment = successful_payment_update(user, offer)
    await stop(system, "backend")

    refused = await system.telegram.deliver(payment, via=system.bot_url)

    assert refused == 503  # not acknowledged: Telegram keeps the update and retries
    assert user.messages() == [offer.message]
    await system.start_service("backend")
    await user.deliver(payment)  # Telegram's retry, now acknowledged
    thanks = await user.next_message()
    assert thanks.text in {f"{THANKS} {date}." for date in vip_until_dates(paid_since)}
    # Telegram may deliver it again still, to this bot or to a restarted one.
    await user.deliver(payment)
    await stop(system, "bot")
    await system.start_service("bot")
    await user.deliver(payment)

    status = await user.status()
    assert status.splitlines()[0] in {
        f"Plan: ⭐ VIP until {date}." for date in vip_until_dates(paid_since)
    }
    assert [m.text for m in user.messages()] == [offer.message.text, thanks.text, status]

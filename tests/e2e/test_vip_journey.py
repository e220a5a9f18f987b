"""Buying VIP as Telegram does it: offer, pre-checkout, payment, then more than the free ten."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import groupby

import pytest

from tests.e2e.conftest import System, TelegramUser
from tests.e2e.payments import (
    PAY_BUTTON,
    PERIOD_DAYS,
    PRICE,
    STARS,
    SUBSCRIPTION_PERIOD_S,
    answer_to,
    open_offer,
    pre_checkout_update,
    successful_payment_update,
    vip_until_dates,
)
from tests.e2e.test_journeys import DEFAULT_ANSWER
from tests.fakes.telegram import Call

PAYMENT_METHODS = {"createInvoiceLink", "answerPreCheckoutQuery"}


def journey_calls(system: System, user: TelegramUser, after: int) -> list[Call]:
    """Bot API calls since `after` in the user's chat, and the chat-less payment calls."""
    return [
        c
        for c in system.telegram.calls()
        if c.seq > after and (c.chat_id == user.id or c.method in PAYMENT_METHODS)
    ]


def collapsed(methods: list[str]) -> str:
    """["a", "a", "b"] -> "a ×2 → b": the call sequence short enough to read."""
    runs = [(name, len(list(group))) for name, group in groupby(methods)]
    return " → ".join(name if count == 1 else f"{name} ×{count}" for name, count in runs)


async def test_vip_bought_with_stars_lifts_the_free_limit(
    system: System, user: TelegramUser, request: pytest.FixtureRequest
):
    before = system.telegram.calls()
    after = before[-1].seq if before else -1
    paid_since = datetime.now(UTC)

    offer = await open_offer(user)

    assert offer.message.text.splitlines() == [
        "⭐ VIP — unlimited messages with ChatGPT, Perplexity and DeepSeek.",
        f"{PRICE} Telegram Stars for {PERIOD_DAYS} days.",
    ]
    assert offer.message.button_labels() == [PAY_BUTTON, "☰ Menu"]
    link = offer.link.params
    assert link["currency"] == STARS
    assert [p["amount"] for p in link["prices"]] == [PRICE]
    assert link["subscription_period"] == SUBSCRIPTION_PERIOD_S
    assert link["title"] == "Pomogator VIP"
    assert not link.get("provider_token")

    checkout = pre_checkout_update(user, offer.payload, offer.amount)
    await user.deliver(checkout)
    verdict = await answer_to(user, checkout)
    assert verdict.ok and verdict.params["ok"] is True

    await user.deliver(successful_payment_update(user, offer))
    thanks = await user.next_message()
    assert thanks.text in {
        f"Thank you! ⭐ VIP is active until {date}." for date in vip_until_dates(paid_since)
    }

    questions = [f"VIP question {n} from {user.id}" for n in range(1, 13)]
    for question in questions:
        answer = await user.ask(question)
        assert answer.text == DEFAULT_ANSWER, question
    assert [system.answer_requests(q) for q in questions] == [{"openai": 1}] * 12

    status = (await user.status()).splitlines()
    assert status[0] in {f"Plan: ⭐ VIP until {date}." for date in vip_until_dates(paid_since)}
    assert status[1] == "Auto-renewal: on"
    assert not any("used all" in m.text for m in user.messages())

    calls = journey_calls(system, user, after)
    assert all(c.ok for c in calls), [(c.method, c.description) for c in calls if not c.ok]
    methods = [c.method for c in calls]
    # On the test's report (as record_property does, without its junit xunit2 warning).
    request.node.user_properties.append(("bot_api_calls", methods))
    print(f"\nVIP journey Bot API calls ({len(methods)}):\n  {collapsed(methods)}")


async def test_pre_checkout_with_a_changed_price_is_declined(system: System, user: TelegramUser):
    offer = await open_offer(user)

    tampered = pre_checkout_update(user, offer.payload, amount=1)
    await user.deliver(tampered)
    verdict = await answer_to(user, tampered)

    assert verdict.ok and verdict.params["ok"] is False
    assert verdict.params["error_message"] == (
        "This invoice can't be paid: the price has changed. Please open /subscribe for a fresh one."
    )
    assert user.messages() == [offer.message]
    assert (await user.status()).startswith("Plan: free — 10 of 10 messages left.")


@pytest.fixture
async def backend_restored(system: System) -> AsyncIterator[None]:
    """For a test that stops the backend: it runs again afterwards, for the module's others."""
    yield
    if system.backend.process.returncode is not None:
        await system.start_service("backend")


async def test_payment_is_not_acknowledged_while_the_backend_is_down(
    system: System, user: TelegramUser, backend_restored: None
):
    offer = await open_offer(user)
    checkout = pre_checkout_update(user, offer.payload, offer.amount)
    await user.deliver(checkout)
    assert (await answer_to(user, checkout)).params["ok"] is True
    assert await system.stop_service("backend") in (0, -15)

    status = await system.telegram.deliver(
        successful_payment_update(user, offer), via=system.bot_url
    )

    assert status == 503  # not 2xx: Telegram keeps the update and delivers it again
    assert user.messages() == [offer.message]  # no thanks, and no apology either
    await system.start_service("backend")
    assert (await user.status()).startswith("Plan: free — 10 of 10 messages left.")

"""Paying for VIP as Telegram does it: the offer, the pre-checkout query, the payment message."""

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import TelegramUser
from tests.fakes.telegram import Call

STARS = "XTR"
PRICE = 250  # VIP_PRICE_STARS by default
PERIOD_DAYS = 30  # VIP_PERIOD_DAYS by default
SUBSCRIPTION_PERIOD_S = 2592000  # the only period Telegram accepts for a Stars subscription
PAY_BUTTON = f"⭐ Pay {PRICE} Stars"


@dataclass
class Offer:
    """What /subscribe showed: the offer message and the invoice link behind its pay button."""

    message: Call
    link: Call

    @property
    def payload(self) -> str:
        return str(self.link.params["payload"])

    @property
    def amount(self) -> int:
        return sum(int(price["amount"]) for price in self.link.params["prices"])


async def open_offer(user: TelegramUser) -> Offer:
    """/subscribe; the offer the user sees and the createInvoiceLink its pay button opens."""
    await user.send("/subscribe")
    message = await user.next_message(lambda c: c.text.startswith("⭐ VIP"))
    urls = dict(message.buttons())
    [link] = [
        c
        for c in user.telegram.calls("createInvoiceLink")
        if c.ok and c.result == urls.get(PAY_BUTTON)
    ]
    return Offer(message, link)


def pre_checkout_update(
    user: TelegramUser, payload: str, amount: int, currency: str = STARS
) -> dict[str, Any]:
    """The pre_checkout_query Telegram sends when the user confirms the payment form."""
    return {
        # The fake's own counter, so update ids keep increasing as Telegram's do.
        "update_id": next(user.telegram._update_ids),
        "pre_checkout_query": {
            "id": str(secrets.randbits(63)),
            "from": user.user,
            "currency": currency,
            "total_amount": amount,
            "invoice_payload": payload,
        },
    }


def successful_payment_update(
    user: TelegramUser, offer: Offer, charge_id: str | None = None
) -> dict[str, Any]:
    """The service message of a first Stars subscription payment, as Telegram sends it."""
    # A message in the user's chat (its id from the chat's counter), then made a payment.
    update = user.telegram.message_update(user.user, "payment")
    message = update["message"]
    del message["text"]
    message["successful_payment"] = {
        "currency": STARS,
        "total_amount": offer.amount,
        "invoice_payload": offer.payload,
        "subscription_expiration_date": int(time.time()) + SUBSCRIPTION_PERIOD_S,
        "is_recurring": True,
        "is_first_recurring": True,
        "telegram_payment_charge_id": charge_id or "stxE2E" + secrets.token_hex(16),
        "provider_payment_charge_id": "",
    }
    return update


async def answer_to(user: TelegramUser, update: dict[str, Any]) -> Call:
    """The bot's answerPreCheckoutQuery for a delivered pre_checkout_query."""
    query_id = update["pre_checkout_query"]["id"]
    [answer] = await user.telegram.wait_for(
        lambda c: (
            c.method == "answerPreCheckoutQuery"
            and c.params.get("pre_checkout_query_id") == query_id
        )
    )
    return answer


def long_date(moment: datetime) -> str:
    """A date as the bot writes it in English: "January 31, 2027"."""
    return f"{moment:%B} {moment.day}, {moment.year}"


def vip_until_dates(since: datetime, days: int = PERIOD_DAYS) -> set[str]:
    """The expiry dates a payment made between `since` and now can show (midnight-safe)."""
    return {long_date(moment + timedelta(days=days)) for moment in (since, datetime.now(UTC))}

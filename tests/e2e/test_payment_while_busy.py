"""A payment that arrives while the user's queue of messages is full is still recorded.

Past MAX_WAITING_PER_USER the bot answers messages with "I'm still answering…"; a
`successful_payment` treated the same way was acknowledged with 200 and never recorded, so
the money moved and VIP was never given (payments now bypass the per-user queue).
"""

import asyncio

from tests.e2e.conftest import INTERNAL_TOKEN, System, TelegramUser
from tests.e2e.payments import answer_to, open_offer, pre_checkout_update, successful_payment_update
from tests.e2e.test_burst import BUSY

THANKS = "Thank you! ⭐ VIP is active until"
# MAX_WAITING_PER_USER is 5 by default: six messages are one being answered and five waiting.
QUEUE_FULL = 6


async def test_payment_while_the_users_queue_is_full_is_recorded_and_thanked(
    system: System, user: TelegramUser
):
    offer = await open_offer(user)
    checkout = pre_checkout_update(user, offer.payload, offer.amount)
    await user.deliver(checkout)
    assert (await answer_to(user, checkout)).params["ok"] is True
    system.providers.script("openai", first_delay_s=1.0)  # the first answer holds the queue
    burst = [user.telegram.message_update(user.user, f"Q{n} {user.id}") for n in range(QUEUE_FULL)]
    await asyncio.gather(*(user.deliver(update) for update in burst))
    await user.wait(lambda c: c.method == "sendMessageDraft")  # the first is being answered

    status = await system.telegram.deliver(
        successful_payment_update(user, offer), via=system.bot_url
    )
    system.reset_provider_scripts()

    assert status == 200
    # Acknowledged means recorded: the backend knows of the payment by now.
    subscription = (
        await system.http.get(
            f"{system.backend_url}/api/v1/payments/subscription/{user.id}",
            headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
        )
    ).json()
    assert subscription["is_vip"] is True
    thanks = await user.next_message(lambda c: c.text.startswith(THANKS))
    # The offer, the thanks and an answer to each message of the burst; no busy notice.
    await user.wait(lambda c: c.method == "sendMessage" and c.ok, count=2 + QUEUE_FULL)
    assert [m.text for m in user.messages()].count(thanks.text) == 1
    assert not [m for m in user.messages() if m.text == BUSY]

"""Payments through the bot, with real update JSON and the real backend."""

import asyncio
import time

import httpx

from bot.services.backend import BackendClient
from bot.tests.conftest import ADMIN_ID
from bot.tests.telegram import _update_ids, message_update, user_json


def pre_checkout_update(
    user_id: int, payload: str, amount: int = 250, currency: str = "XTR"
) -> dict:
    return {
        "update_id": next(_update_ids),
        "pre_checkout_query": {
            "id": f"pcq-{next(_update_ids)}",
            "from": user_json(user_id),
            "currency": currency,
            "total_amount": amount,
            "invoice_payload": payload,
        },
    }


def paid_update(user_id: int, payload: str, charge: str, *, subscription: bool = True) -> dict:
    payment = {
        "currency": "XTR",
        "total_amount": 250,
        "invoice_payload": payload,
        "telegram_payment_charge_id": charge,
        "provider_payment_charge_id": "",
    }
    if subscription:
        payment |= {
            "subscription_expiration_date": int(time.time()) + 30 * 86400,
            "is_recurring": True,
            "is_first_recurring": True,
        }
    return message_update(user_id, successful_payment=payment)


async def open_offer(env, user_id: int) -> str:
    await env.send(message_update(user_id, "/subscribe"))
    [link] = env.telegram.named("CreateInvoiceLink")
    return link.params["payload"]


async def test_subscribe_offers_a_stars_subscription_link(env, user_id):
    await env.send(message_update(user_id, "/start"))
    await env.send(message_update(user_id, "/subscribe"))
    [link] = env.telegram.named("CreateInvoiceLink")
    assert link.params["currency"] == "XTR"
    assert link.params["subscription_period"] == 2592000
    assert [p["amount"] for p in link.params["prices"]] == [250]
    offer = env.telegram.named("SendMessage")[-1]
    assert "250 Telegram Stars" in offer.text
    markup = offer.params["reply_markup"]
    assert markup.inline_keyboard[0][0].url.startswith("https://t.me/$invoice")
    assert markup.inline_keyboard[0][0].text == "⭐ Pay 250 Stars"


async def test_valid_pre_checkout_is_accepted(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(pre_checkout_update(user_id, payload))
    [answer] = env.telegram.named("AnswerPreCheckoutQuery")
    assert answer.params["ok"] is True


async def test_tampered_pre_checkout_is_declined(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(pre_checkout_update(user_id, payload, amount=1))
    await env.send(pre_checkout_update(user_id + 1, payload))
    answers = env.telegram.named("AnswerPreCheckoutQuery")
    assert [a.params["ok"] for a in answers] == [False, False]
    assert "price has changed" in answers[0].params["error_message"]


async def test_pre_checkout_is_answered_in_time_when_the_backend_hangs(env, user_id):
    async def hang(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(500)

    env.dp.workflow_data["backend"] = BackendClient(
        "http://hung", "x", transport=httpx.MockTransport(hang)
    )
    env.dp.workflow_data["settings"] = env.settings.model_copy(
        update={"pre_checkout_timeout_s": 0.3}
    )
    started = time.monotonic()
    await env.send(pre_checkout_update(user_id, "vip-whatever"))
    [answer] = env.telegram.named("AnswerPreCheckoutQuery")
    assert answer.params["ok"] is False
    assert time.monotonic() - started < 5


async def test_payment_gives_vip_and_answers_beyond_ten(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(paid_update(user_id, payload, f"tg-{user_id}"))
    assert "VIP is active until" in env.telegram.sent_texts()[-1]
    env.fake.script("openai", text="still here")
    for n in range(12):
        await env.send(message_update(user_id, f"q{n}"))
    answers = [t for t in env.telegram.sent_texts() if t.strip() == "still here"]
    assert len(answers) == 12


async def test_one_off_payment_without_subscription_fields_gives_vip(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(paid_update(user_id, payload, f"one-{user_id}", subscription=False))
    assert (await env.backend.subscription(user_id)).is_vip


async def test_redelivered_payment_is_recorded_and_thanked_once(env, user_id):
    payload = await open_offer(env, user_id)
    update = paid_update(user_id, payload, f"dup-{user_id}")
    await env.send(update)
    await env.send(update)
    thanks = [t for t in env.telegram.sent_texts() if "VIP is active" in t]
    assert len(thanks) == 1
    first_expiry = (await env.backend.subscription(user_id)).vip_expires_at
    await env.send(update)
    assert (await env.backend.subscription(user_id)).vip_expires_at == first_expiry


async def test_payment_is_not_acknowledged_while_the_backend_is_down(env, user_id):
    from bot.tests.test_webhook import SECRET, serve

    payload = await open_offer(env, user_id)
    runner, url = await serve(env)
    try:
        working = env.dp.workflow_data["backend"]
        env.dp.workflow_data["backend"] = BackendClient("http://127.0.0.1:9", "x")
        update = paid_update(user_id, payload, f"down-{user_id}")
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with httpx.AsyncClient(timeout=30) as http:
            refused = await http.post(f"{url}/tg/hook", json=update, headers=headers)
            env.dp.workflow_data["backend"] = working
            accepted = await http.post(f"{url}/tg/hook", json=update, headers=headers)
        assert refused.status_code == 503
        assert accepted.status_code == 200
        assert (await env.backend.subscription(user_id)).is_vip
    finally:
        await runner.cleanup()


async def test_refunded_payment_revokes_vip_and_tells_the_user(env, user_id):
    payload = await open_offer(env, user_id)
    charge = f"ref-{user_id}"
    await env.send(paid_update(user_id, payload, charge))
    refund = {
        "currency": "XTR",
        "total_amount": 250,
        "invoice_payload": payload,
        "telegram_payment_charge_id": charge,
    }
    await env.send(message_update(user_id, refunded_payment=refund))
    assert "refunded" in env.telegram.sent_texts()[-1]
    assert not (await env.backend.subscription(user_id)).is_vip


async def test_subscription_update_turns_renewal_off(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(paid_update(user_id, payload, f"sub-{user_id}"))
    assert (await env.backend.subscription(user_id)).auto_renew
    update = {
        "update_id": next(_update_ids),
        "subscription": {
            "user": user_json(user_id),
            "invoice_payload": payload,
            "state": "canceled",
        },
    }
    await env.send(update)
    info = await env.backend.subscription(user_id)
    assert (info.auto_renew, info.is_vip) == (False, True)


async def test_cancelling_renewal_from_the_vip_menu(env, user_id):
    from bot.tests.telegram import callback_update

    payload = await open_offer(env, user_id)
    await env.send(paid_update(user_id, payload, f"cx-{user_id}"))
    await env.send(message_update(user_id, "/subscribe"))
    vip = env.telegram.named("SendMessage")[-1]
    assert "Auto-renewal: on" in vip.text
    [(_label, data)] = [b for b in vip.buttons() if "renewal" in b[0]]
    await env.send(callback_update(user_id, data))
    [edit] = env.telegram.named("EditUserStarSubscription")
    assert (edit.params["is_canceled"], edit.params["telegram_payment_charge_id"]) == (
        True,
        f"cx-{user_id}",
    )
    assert "Auto-renewal is off" in env.telegram.named("EditMessageText")[-1].text


async def test_admin_refund_calls_telegram_and_revokes(env, user_id):
    payload = await open_offer(env, user_id)
    charge = f"adm-{user_id}"
    await env.send(paid_update(user_id, payload, charge))
    admin = ADMIN_ID
    await env.send(message_update(user_id, f"/refund {charge}"))
    assert "for the bot's operators" in env.telegram.sent_texts()[-1]
    await env.send(message_update(admin, f"/refund {charge}"))
    [call] = env.telegram.named("RefundStarPayment")
    assert (call.params["user_id"], call.params["telegram_payment_charge_id"]) == (user_id, charge)
    assert "Refunded 250 XTR" in env.telegram.sent_texts()[-1]
    assert not (await env.backend.subscription(user_id)).is_vip


async def test_status_and_settings_show_vip_until_and_renewal(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(paid_update(user_id, payload, f"st-{user_id}"))
    await env.send(message_update(user_id, "/status"))
    status = env.telegram.sent_texts()[-1]
    assert "VIP until" in status and "Auto-renewal: on" in status
    await env.send(message_update(user_id, "/settings"))
    assert "Auto-renewal: on" in env.telegram.sent_texts()[-1]


async def test_payment_is_recorded_even_when_the_users_queue_is_full(env, user_id):
    payload = await open_offer(env, user_id)
    env.fake.script("openai", text="slow", first_delay_s=0.3)
    burst = [message_update(user_id, f"q{n}") for n in range(env.settings.max_waiting_per_user + 2)]
    chats = [asyncio.create_task(env.send(update)) for update in burst]
    await asyncio.sleep(0.05)  # the queue is full now
    await env.send(paid_update(user_id, payload, f"busy-{user_id}"))
    assert (await env.backend.subscription(user_id)).is_vip
    await asyncio.gather(*chats)
    assert any("VIP is active until" in t for t in env.telegram.sent_texts())

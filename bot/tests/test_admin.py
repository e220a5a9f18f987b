"""Operators in the bot: menu, stats, user cards, VIP by hand, blocking — real backend."""

from bot.keyboards.admin import AdminMenuCB, AdminUserCB
from bot.tests.conftest import ADMIN_ID, replica
from bot.tests.telegram import callback_update, message_update
from bot.tests.test_payments import paid_update

SUSPENDED_EN = "Your access to Pomogator has been suspended by its operators."
SUSPENDED_RU = "Ваш доступ к Pomogator приостановлен операторами."


async def start_user(env, user_id: int, language: str = "en") -> None:
    await env.send(message_update(user_id, "/start", language=language))
    env.telegram.calls.clear()


def last_text(env) -> str:
    return env.telegram.sent_texts()[-1]


async def test_admin_command_opens_the_operator_menu(env):
    await env.send(message_update(ADMIN_ID, "/admin"))
    menu = env.telegram.named("SendMessage")[-1]
    assert menu.text.startswith("🛠 Operator menu")
    assert [text for text, _ in menu.buttons()] == [
        "📊 Stats",
        "🔎 Find a user",
        "📣 Broadcast",
        "❓ Help",
    ]


async def test_non_admin_is_refused_every_operator_command(env, user_id):
    await start_user(env, user_id)
    for command in (
        "/admin",
        "/stats",
        f"/find {user_id}",
        f"/grant {user_id} 30",
        "/broadcast all",
    ):
        await env.send(message_update(user_id, command))
    refusals = env.telegram.sent_texts()
    assert refusals == ["This command is for the bot's operators."] * 5


async def test_forged_operator_button_from_a_user_changes_nothing(env, user_id):
    await start_user(env, user_id)
    victim = user_id + 1
    await start_user(env, victim)
    forged = AdminUserCB(action="block", user_id=victim).pack()
    await env.send(callback_update(user_id, forged))
    [alert] = env.telegram.named("AnswerCallbackQuery")
    assert alert.params["text"] == "This command is for the bot's operators."
    card = await env.backend.admin_lookup(ADMIN_ID, str(victim))
    assert card.blocked is False


async def test_stats_button_shows_the_figures(env, user_id):
    await start_user(env, user_id)
    await start_user(env, ADMIN_ID)  # the operator is a user too: counted before the figures
    stats = await env.backend.admin_stats(ADMIN_ID)
    await env.send(callback_update(ADMIN_ID, AdminMenuCB(action="stats").pack()))
    text = last_text(env)
    assert f"📊 Users: {stats.users_total} (+{stats.users_new_today} today)" in text
    assert f"⭐ VIP: {stats.vip_active}" in text
    assert "Answers today:" in text and "Error rate today:" in text


async def test_find_shows_the_card_with_action_buttons(env, user_id):
    await start_user(env, user_id)
    await env.send(message_update(ADMIN_ID, f"/find @anna{user_id}"))
    card = env.telegram.named("SendMessage")[-1]
    assert f"👤 Anna · id {user_id}" in card.text
    assert f"@anna{user_id}" in card.text
    assert "Free plan: 10 of 10 messages left" in card.text
    assert "No payments." in card.text
    assert card.buttons() == [
        ("⭐ +30 days", AdminUserCB(action="vip30", user_id=user_id).pack()),
        ("⭐ +365 days", AdminUserCB(action="vip365", user_id=user_id).pack()),
        ("⛔ Block", AdminUserCB(action="block", user_id=user_id).pack()),
    ]


async def test_find_unknown_user_says_so(env):
    await env.send(message_update(ADMIN_ID, "/find @nobody_by_this_name"))
    assert last_text(env) == "No user matches @nobody_by_this_name."
    await env.send(message_update(ADMIN_ID, "/find"))
    assert last_text(env).startswith("Usage: /find")


async def test_grant_command_gives_vip_days(env, user_id):
    await start_user(env, user_id)
    await env.send(message_update(ADMIN_ID, f"/grant {user_id} 30"))
    assert last_text(env).startswith("⭐ VIP until ")
    profile = await env.backend.profile(user_id)
    assert profile.is_vip is True


async def test_grant_with_bad_days_shows_usage(env, user_id):
    await start_user(env, user_id)
    for bad in (f"/grant {user_id}", f"/grant {user_id} 0", f"/grant {user_id} 9999"):
        await env.send(message_update(ADMIN_ID, bad))
    assert all(t.startswith("Usage: /grant") for t in env.telegram.sent_texts())
    assert (await env.backend.profile(user_id)).is_vip is False


async def test_vip_button_then_revoke_button(env, user_id):
    await start_user(env, user_id)
    await env.send(callback_update(ADMIN_ID, AdminUserCB(action="vip365", user_id=user_id).pack()))
    edited = env.telegram.named("EditMessageText")[-1]
    assert "⭐ VIP until" in edited.text
    assert ("✖️ Revoke VIP", AdminUserCB(action="revoke", user_id=user_id).pack()) in (
        edited.buttons()
    )
    assert (await env.backend.profile(user_id)).is_vip is True
    await env.send(callback_update(ADMIN_ID, AdminUserCB(action="revoke", user_id=user_id).pack()))
    assert env.telegram.named("EditMessageText")[-1].text.endswith("VIP ended.")
    assert (await env.backend.profile(user_id)).is_vip is False
    assert env.telegram.named("EditUserStarSubscription") == []


async def test_revoke_cancels_the_users_stars_subscription(env, user_id):
    await env.send(message_update(user_id, "/start"))
    await env.send(message_update(user_id, "/subscribe"))
    [link] = env.telegram.named("CreateInvoiceLink")
    await env.send(paid_update(user_id, link.params["payload"], "stars-charge-revoke"))
    assert (await env.backend.profile(user_id)).is_vip is True
    env.telegram.calls.clear()
    await env.send(message_update(ADMIN_ID, f"/revoke {user_id}"))
    [cancel] = env.telegram.named("EditUserStarSubscription")
    assert cancel.params == {
        "user_id": user_id,
        "telegram_payment_charge_id": "stars-charge-revoke",
        "is_canceled": True,
        "reply_markup": None,
    }
    assert last_text(env).startswith("VIP ended; the Stars subscription will not renew.")
    assert (await env.backend.profile(user_id)).is_vip is False


async def test_card_lists_charge_ids_for_refund(env, user_id):
    await env.send(message_update(user_id, "/start"))
    await env.send(message_update(user_id, "/subscribe"))
    [link] = env.telegram.named("CreateInvoiceLink")
    await env.send(paid_update(user_id, link.params["payload"], "stars-charge-card"))
    await env.send(message_update(ADMIN_ID, f"/find {user_id}"))
    text = last_text(env)
    assert "Payments (refund with /refund <charge id>):" in text
    assert "250 XTR" in text and "stars-charge-card" in text


async def test_blocked_user_gets_one_clear_message_and_no_answer(env, user_id):
    await start_user(env, user_id)
    await env.send(message_update(ADMIN_ID, f"/block {user_id}"))
    assert last_text(env).startswith("⛔ Blocked")
    env.telegram.calls.clear()
    env.fake.reset()
    await env.send(message_update(user_id, "hello?"))
    assert env.telegram.sent_texts() == [
        SUSPENDED_EN + " If you think this is a mistake, please contact support."
    ]
    assert env.fake.requests() == []
    assert (await env.backend.profile(user_id)).free_messages_left == 10


async def test_unblocked_user_is_answered_again(env, user_id):
    await start_user(env, user_id)
    await env.send(message_update(ADMIN_ID, f"/block {user_id}"))
    await env.send(callback_update(ADMIN_ID, AdminUserCB(action="unblock", user_id=user_id).pack()))
    assert env.telegram.named("EditMessageText")[-1].text.endswith("✅ Unblocked.")
    env.telegram.calls.clear()
    env.fake.script("openai", text="Welcome back.")
    await env.send(message_update(user_id, "hello?"))
    assert any("Welcome back." in t for t in env.telegram.sent_texts())
    assert not any(SUSPENDED_EN in t for t in env.telegram.sent_texts())


async def test_blocked_user_is_told_in_russian(env, user_id):
    await start_user(env, user_id, language="ru")
    await env.backend.admin_set_blocked(ADMIN_ID, user_id, True)
    # This bot's cached profile still says "not blocked": the backend refuses, in its words.
    env.fake.reset()
    await env.send(message_update(user_id, "привет", language="ru"))
    texts = env.telegram.sent_texts()
    assert any(SUSPENDED_RU in t for t in texts), texts
    assert env.fake.requests() == []


async def test_another_bot_process_sees_the_block(env, user_id):
    await start_user(env, user_id)
    await env.send(message_update(ADMIN_ID, f"/block {user_id}"))
    async with replica(env.backend) as other:
        await other.send(message_update(user_id, "hello?"))
        assert [t for t in other.telegram.sent_texts() if SUSPENDED_EN in t]

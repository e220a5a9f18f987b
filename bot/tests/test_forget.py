"""/forget: a confirmation first, then the conversation texts are erased; billing stays."""

from bot.tests.telegram import callback_update, message_update
from bot.tests.test_payments import open_offer, paid_update


def buttons(call) -> dict[str, str]:
    return dict(call.buttons())


async def ask_twice(env, user_id) -> None:
    env.fake.script("openai", text="remembered")
    await env.send(message_update(user_id, "My name is Anna"))
    await env.send(message_update(user_id, "What is my name?"))


async def test_forget_asks_before_erasing_anything(env, user_id):
    await ask_twice(env, user_id)
    await env.send(message_update(user_id, "/forget"))
    question = env.telegram.named("SendMessage")[-1]
    assert "Erase your conversation history?" in question.text
    assert "payments and billing records are kept" in question.text
    assert list(buttons(question)) == ["🗑 Yes, erase", "Cancel"]


async def test_confirmed_forget_says_how_many_were_erased_and_keeps_billing(env, user_id):
    await ask_twice(env, user_id)
    await env.send(message_update(user_id, "/forget"))
    yes = buttons(env.telegram.named("SendMessage")[-1])["🗑 Yes, erase"]
    await env.send(callback_update(user_id, yes))
    done = env.telegram.named("EditMessageText")[-1].text
    assert "2 messages erased" in done
    assert "payments and billing records are kept" in done
    assert (await env.backend.profile(user_id)).free_messages_left == 8  # still counted
    await env.send(callback_update(user_id, yes))  # nothing left to erase
    assert "no saved messages" in env.telegram.named("EditMessageText")[-1].text


async def test_forgotten_conversation_is_not_sent_to_the_model_again(env, user_id):
    await ask_twice(env, user_id)
    await env.send(callback_update(user_id, "fg:yes"))
    await env.send(message_update(user_id, "Hello again"))
    history = env.fake.requests("openai")[-1].body["input"]
    assert "My name is Anna" not in str(history)


async def test_cancelled_forget_erases_nothing(env, user_id):
    await ask_twice(env, user_id)
    await env.send(message_update(user_id, "/forget"))
    no = buttons(env.telegram.named("SendMessage")[-1])["Cancel"]
    await env.send(callback_update(user_id, no))
    assert env.telegram.named("EditMessageText")[-1].text == "Nothing was erased."
    await env.send(callback_update(user_id, "fg:yes"))
    assert "2 messages erased" in env.telegram.named("EditMessageText")[-1].text


async def test_forget_is_reachable_from_the_settings(env, user_id):
    await env.send(message_update(user_id, "/settings"))
    settings = buttons(env.telegram.named("SendMessage")[-1])
    await env.send(callback_update(user_id, settings["🗑 Erase conversation history"]))
    question = env.telegram.named("EditMessageText")[-1]
    assert "Erase your conversation history?" in question.text
    assert list(buttons(question)) == ["🗑 Yes, erase", "Cancel"]


async def test_forget_in_russian_counts_in_russian(env, user_id):
    await env.send(message_update(user_id, "/start", language="ru"))
    env.fake.script("openai", text="ok")
    for n in range(3):
        await env.send(message_update(user_id, f"вопрос {n}", language="ru"))
    await env.send(message_update(user_id, "/forget", language="ru"))
    question = env.telegram.named("SendMessage")[-1]
    assert "Стереть историю" in question.text
    await env.send(callback_update(user_id, buttons(question)["🗑 Да, стереть"], language="ru"))
    done = env.telegram.named("EditMessageText")[-1].text
    assert "стёрто 3 сообщения" in done and "Платежи и записи об оплате сохранены" in done


async def test_payments_survive_forget(env, user_id):
    payload = await open_offer(env, user_id)
    await env.send(paid_update(user_id, payload, f"keep-{user_id}"))
    await env.send(callback_update(user_id, "fg:yes"))
    assert (await env.backend.subscription(user_id)).is_vip
    assert (await env.backend.transaction(f"keep-{user_id}")).status != "refunded"


async def test_forget_is_in_the_command_menu_in_both_languages(env):
    from bot.main import set_commands

    await set_commands(env.bot, env.dp)
    menus = {
        c.params.get("language_code"): {
            x["command"]: x["description"] for x in c.params["commands"]
        }
        for c in env.telegram.named("SetMyCommands")
    }
    assert menus["en"]["forget"] == "Erase my conversation history"
    assert menus["ru"]["forget"] == "Стереть историю диалогов"
    assert "forget" in menus[None]

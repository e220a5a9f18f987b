"""Chat modes and the custom instruction, set through /settings and /instructions, reaching the
provider as the system prompt (real updates, fake Telegram over HTTP, the real backend)."""

from bot.tests.conftest import LiveBotEnv
from tests.fakes.telegram import Call


def user(env: LiveBotEnv, user_id: int, language: str = "en") -> dict:
    return env.telegram.user(user_id, language_code=language, username=f"anna{user_id}")


def shown(env: LiveBotEnv, user_id: int) -> list[Call]:
    return [
        c
        for c in env.telegram.calls(chat_id=user_id)
        if c.ok and c.method in ("sendMessage", "editMessageText")
    ]


def notices(env: LiveBotEnv) -> list[str]:
    return [str(c.params.get("text") or "") for c in env.telegram.calls("answerCallbackQuery")]


async def press(env: LiveBotEnv, user_id: int, message: Call, button: str) -> Call:
    """Press a button under a message; what the user then sees last."""
    await env.send(env.telegram.callback_update(user(env, user_id), message, button=button))
    return shown(env, user_id)[-1]


async def ask(env: LiveBotEnv, user_id: int, text: str) -> str:
    """Ask a question; the system prompt the provider got."""
    env.fake.script("openai", text="OK.")
    await env.send(env.telegram.message_update(user(env, user_id), text))
    return env.fake.requests("openai")[-1].body["instructions"]


async def test_mode_is_chosen_in_settings_and_reaches_the_provider(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/settings"))
    settings = shown(env, user_id)[-1]
    assert "Chat mode: General assistant" in settings.text
    assert "Custom instruction: none" in settings.text

    modes = await press(env, user_id, settings, "🎭 Mode: General assistant")
    assert modes.text.startswith("How should I answer? Now: General assistant")
    assert "• Translator — " in modes.text
    assert "✅ General assistant" in modes.button_labels()

    settings = await press(env, user_id, modes, "Translator")
    assert "Chat mode: Translator" in settings.text
    assert "🎭 Mode: Translator" in settings.button_labels()
    assert notices(env)[-1] == "Chat mode: Translator. It applies from your next message."
    assert (await env.backend.profile(user_id)).mode == "translator"
    assert "professional translator" in await ask(env, user_id, "Привет, мир")


async def test_mode_labels_follow_the_interface_language(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id, "ru"), "/settings"))
    settings = shown(env, user_id)[-1]
    assert "Режим: Универсальный помощник" in settings.text
    modes = await press(env, user_id, settings, "🎭 Режим: Универсальный помощник")
    assert "✅ Универсальный помощник" in modes.button_labels()
    assert "Переводчик" in modes.button_labels()


async def test_instruction_is_set_by_replying_to_the_prompt_then_cleared(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/settings"))
    screen = await press(env, user_id, shown(env, user_id)[-1], "✍️ Custom instruction")
    assert screen.text.startswith("✍️ Custom instruction: none yet.")

    prompt = await press(env, user_id, screen, "✏️ Set")
    assert prompt.text.startswith("✏️ Custom instruction\nReply to this message")
    assert prompt.params["reply_markup"]["force_reply"] is True

    reply = env.telegram.message_update(user(env, user_id), "Always answer in one sentence.")
    reply["message"]["reply_to_message"] = prompt.result
    await env.send(reply)
    saved = shown(env, user_id)[-1]
    assert saved.text.startswith("✅ Saved — it applies from your next message.")
    assert "Always answer in one sentence." in saved.text
    assert env.fake.requests() == []  # the reply set the instruction: it was not a question
    assert (await env.backend.profile(user_id)).custom_instructions == (
        "Always answer in one sentence."
    )

    instructions = await ask(env, user_id, "What is rain?")
    assert instructions.endswith("Always answer in one sentence.")

    cleared = await press(env, user_id, saved, "🗑 Clear")
    assert cleared.text.startswith("✍️ Custom instruction: none yet.")
    assert notices(env)[-1] == "Custom instruction cleared."
    assert (await env.backend.profile(user_id)).custom_instructions is None
    assert "one sentence" not in await ask(env, user_id, "And snow?")


async def test_instructions_command_sets_and_shows(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id, "ru"), "/instructions"))
    assert shown(env, user_id)[-1].text.startswith("✍️ Ваша инструкция: пока нет.")

    await env.send(
        env.telegram.message_update(user(env, user_id, "ru"), "/instructions Обращайся на ты")
    )
    assert shown(env, user_id)[-1].text.startswith("✅ Сохранено")
    await env.send(env.telegram.message_update(user(env, user_id, "ru"), "/instructions"))
    current = shown(env, user_id)[-1]
    assert current.text.endswith("Обращайся на ты")
    assert current.button_labels() == ["✏️ Задать", "🗑 Удалить", "← Назад"]


async def test_too_long_instruction_is_refused_and_nothing_changes(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/instructions Be kind."))
    await env.send(env.telegram.message_update(user(env, user_id), "/instructions " + "x" * 1001))
    assert shown(env, user_id)[-1].text == (
        "That's 1,001 characters — an instruction can be up to 1,000. "
        "Please shorten it and send it again."
    )
    assert (await env.backend.profile(user_id)).custom_instructions == "Be kind."


async def test_mode_and_instruction_survive_a_new_conversation(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/instructions Be brief."))
    await env.send(env.telegram.message_update(user(env, user_id), "/settings"))
    modes = await press(env, user_id, shown(env, user_id)[-1], "🎭 Mode: General assistant")
    await press(env, user_id, modes, "Code helper")
    await env.send(env.telegram.message_update(user(env, user_id), "/new"))
    instructions = await ask(env, user_id, "Sort a list in Python")
    assert "senior software engineer" in instructions
    assert instructions.index("senior software engineer") < instructions.index("Be brief.")


async def test_new_commands_are_in_the_menu_in_both_languages(live_env):
    from bot.main import set_commands

    env = live_env
    await set_commands(env.bot, env.dp)
    calls = env.telegram.calls("setMyCommands")
    ru = next(c for c in calls if c.params.get("language_code") == "ru")
    en = next(c for c in calls if c.params.get("language_code") == "en")
    assert {"command": "image", "description": "Нарисовать картинку"} in ru.params["commands"]
    assert {"command": "instructions", "description": "Your custom instruction"} in en.params[
        "commands"
    ]

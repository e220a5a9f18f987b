"""Handlers fed real update JSON: what the user sees, in order."""

from bot.tests.telegram import callback_update, message_update


async def test_start_greets_and_shows_the_main_menu(env, user_id):
    await env.send(message_update(user_id, "/start"))
    [reply] = env.telegram.named("SendMessage")
    assert "Pomogator" in reply.text and "10" in reply.text
    labels = [text for text, _ in reply.buttons()]
    assert labels == [
        "🆕 New chat",
        "🧠 Model",
        "🎨 Picture",
        "📊 Status",
        "⚙️ Settings",
        "❓ Help",
        "⭐ VIP",
    ]


async def test_question_is_answered_with_the_full_text(env, user_id):
    env.fake.script("openai", text="**Paris** is the capital.", chunks=3)
    await env.send(message_update(user_id, "Capital of France?"))
    final = env.telegram.named("SendMessage")[-1]
    assert final.text.strip() == "Paris is the capital."
    assert [e["type"] for e in final.params["entities"]] == ["bold"]
    assert [t for t, _ in final.buttons()] == ["🆕 New chat", "🧠 Model"]
    assert env.telegram.named("SendChatAction")
    assert env.telegram.named("SendMessageDraft")


async def test_russian_user_gets_russian(env, user_id):
    await env.send(message_update(user_id, "/start", language="ru"))
    assert "Помогатор" in env.telegram.named("SendMessage")[0].text


async def test_forged_callback_data_gets_outdated_notice(env, user_id):
    await env.send(message_update(user_id, "/start"))
    await env.send(callback_update(user_id, "md:gpt-99"))
    await env.send(callback_update(user_id, "s:lang:de"))
    await env.send(callback_update(user_id, "garbage"))
    answers = env.telegram.named("AnswerCallbackQuery")
    assert len(answers) == 3
    assert all("outdated" in a.text for a in answers)


async def test_every_command_answers(env, user_id):
    for command in ("/start", "/help", "/status", "/settings", "/model", "/new", "/subscribe"):
        before = len(env.telegram.named("SendMessage"))
        await env.send(message_update(user_id, command))
        assert len(env.telegram.named("SendMessage")) == before + 1, command
    texts = env.telegram.sent_texts()
    assert "10 of 10 messages left" in texts[2]
    assert "Choose an assistant" in texts[4]
    assert "New conversation started" in texts[5]
    assert "250 Telegram Stars" in texts[6]


async def test_every_model_can_be_chosen_from_the_menu(env, user_id):
    await env.send(message_update(user_id, "/model"))
    providers = env.telegram.named("SendMessage")[-1].buttons()
    assert [t for t, _ in providers] == ["✅ ChatGPT", "Perplexity", "DeepSeek", "☰ Menu"]
    chosen = []
    for _, provider_data in providers[:3]:
        await env.send(callback_update(user_id, provider_data))
        models = env.telegram.named("EditMessageText")[-1].buttons()[:-1]
        for label, model_data in models:
            await env.send(callback_update(user_id, model_data))
            confirmation = env.telegram.named("EditMessageText")[-1].text
            assert "Now answering" in confirmation
            chosen.append((label.removeprefix("✅ "), (await env.backend.profile(user_id)).model))
    assert len(chosen) == 8
    assert [key for _, key in chosen] == [
        "chatgpt-instant",
        "chatgpt-thinking",
        "chatgpt-flagship",
        "perplexity-search",
        "perplexity-research",
        "perplexity-laboratory",
        "deepseek-standard",
        "deepseek-thinking",
    ]
    labels = " ".join(label for label, _ in chosen)
    for word in ("Instant", "Thinking", "Search", "Research", "Laboratory", "Standard"):
        assert word in labels


async def test_chosen_model_answers_the_next_question(env, user_id):
    await env.send(message_update(user_id, "/start"))
    await env.send(callback_update(user_id, "md:deepseek-standard"))
    env.fake.script("deepseek", text="From DeepSeek.")
    await env.send(message_update(user_id, "Hello?"))
    assert env.fake.requests("deepseek")
    assert env.telegram.named("SendMessage")[-1].text.strip() == "From DeepSeek."


async def test_eleventh_message_gets_the_paywall(env, user_id):
    for number in range(10):
        await env.send(message_update(user_id, f"question {number}"))
    calls = len(env.fake.requests("openai"))
    await env.send(message_update(user_id, "one more"))
    paywall = env.telegram.named("SendMessage")[-1]
    assert "used all 10 free messages" in paywall.text
    assert "⭐ VIP" in [t for t, _ in paywall.buttons()]
    assert len(env.fake.requests("openai")) == calls


async def test_messages_it_cannot_read_are_told_what_works(env, user_id):
    sticker = {
        "file_id": "s",
        "file_unique_id": "u",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    await env.send(message_update(user_id, sticker=sticker))
    await env.send(message_update(user_id, location={"latitude": 55.75, "longitude": 37.61}))
    video = {"file_id": "v", "file_unique_id": "w", "width": 1, "height": 1, "duration": 3}
    await env.send(message_update(user_id + 1, language="ru", video=video))
    texts = env.telegram.sent_texts()
    assert len(texts) == 3, texts
    assert texts[0] == texts[1]
    assert texts[0].startswith("I can read text, voice messages, photos and documents")
    assert texts[2].startswith("Я понимаю текст, голосовые, фото и документы")
    assert env.fake.requests() == []


async def test_long_answer_is_split_under_the_limit_with_nothing_lost(env, user_id):
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 3
    answer = "\n\n".join(f"{i}. {paragraph}" for i in range(55))
    assert len(answer) > 9000
    env.fake.script("openai", text=answer, chunks=20)
    await env.send(message_update(user_id, "Tell me a lot"))
    parts = env.telegram.named("SendMessage")
    assert len(parts) >= 3
    assert all(len(p.text) <= 4096 for p in parts)
    joined = "".join(p.text for p in parts)
    assert joined.split() == answer.split()


async def test_rejected_formatting_falls_back_to_plain_text(env, user_id):
    from bot.tests.telegram import entities_rejected

    env.fake.script("openai", text="Some **bold** claim.")
    env.telegram.failures.setdefault("SendMessage", []).append(
        lambda m: entities_rejected(m) if getattr(m, "entities", None) else None
    )
    await env.send(message_update(user_id, "Format me"))
    final = env.telegram.named("SendMessage")[-1]
    assert final.text.strip() == "Some bold claim."
    assert not final.params.get("entities")


async def test_telegram_429_is_waited_out_and_the_answer_arrives(env, user_id):
    from bot.tests.telegram import retry_after

    env.fake.script("openai", text="Patience pays.")
    env.telegram.failures.setdefault("SendMessage", []).append(retry_after(1))
    await env.send(message_update(user_id, "Hello"))
    assert env.telegram.named("SendMessage")[-1].text.strip() == "Patience pays."


async def test_provider_failure_gets_an_apology_and_nothing_charged(env, user_id):
    env.fake.script("openai", fault="http_500")
    await env.send(message_update(user_id, "Hello"))
    text = env.telegram.sent_texts()[-1]
    assert "unavailable" in text and "Nothing was charged" in text
    assert (await env.backend.profile(user_id)).free_messages_left == 10


async def test_backend_down_tells_the_user_quickly(env, user_id):
    from bot.services.backend import BackendClient

    env.dp.workflow_data["backend"] = BackendClient("http://127.0.0.1:9", "x")
    env.dp["profiles"]._local._items.clear()
    await env.send(message_update(user_id, "Hello"))
    assert "temporarily unavailable" in env.telegram.sent_texts()[-1]


async def test_reasoning_shows_as_an_expandable_quote(env, user_id):
    await env.send(message_update(user_id, "/start"))
    await env.send(callback_update(user_id, "md:deepseek-thinking"))
    env.fake.script("deepseek", text="Four.", reasoning="Two plus two is four.")
    await env.send(message_update(user_id, "2+2?"))
    final = env.telegram.named("SendMessage")[-1]
    assert "Two plus two is four." in final.text and final.text.rstrip().endswith("Four.")
    assert "expandable_blockquote" in [e["type"] for e in final.params["entities"]]


async def test_language_switch_in_settings_changes_the_interface(env, user_id):
    await env.send(message_update(user_id, "/settings"))
    await env.send(callback_update(user_id, "s:lang:ru"))
    assert "Язык: Русский" in env.telegram.named("EditMessageText")[-1].text
    await env.send(message_update(user_id, "/help"))
    assert env.telegram.sent_texts()[-1].startswith("Как пользоваться")


async def test_command_menu_is_registered_in_both_languages(env):
    from bot.main import set_commands

    await set_commands(env.bot, env.dp)
    calls = env.telegram.named("SetMyCommands")
    assert {c.params.get("language_code") for c in calls} == {None, "ru", "en"}
    ru = next(c for c in calls if c.params.get("language_code") == "ru")
    assert {"command": "model", "description": "Выбрать модель ИИ"} in ru.params["commands"]


async def test_burst_from_one_user_is_answered_in_order(env, user_id):
    import asyncio

    env.fake.script("openai", text="answer", first_delay_s=0.05)
    updates = [message_update(user_id, f"question {n}") for n in range(3)]
    await asyncio.gather(*(env.send(update) for update in updates))
    asked = [r.body["input"][-1]["content"] for r in env.fake.requests("openai")]
    assert asked == ["question 0", "question 1", "question 2"]
    assert len([c for c in env.telegram.named("SendMessage") if c.text.strip() == "answer"]) == 3


async def test_burst_beyond_the_bound_is_asked_to_wait(env, user_id):
    import asyncio

    env.fake.script("openai", text="answer", first_delay_s=0.2)
    limit = env.settings.max_waiting_per_user
    updates = [message_update(user_id, f"q{n}") for n in range(limit + 3)]
    await asyncio.gather(*(env.send(update) for update in updates))
    texts = env.telegram.sent_texts()
    waits = [t for t in texts if t.startswith("I'm still answering")]
    answers = [t for t in texts if t.strip() == "answer"]
    assert waits and answers
    assert len(waits) + len(answers) == limit + 3


async def test_every_main_menu_button_leads_somewhere(env, user_id):
    await env.send(message_update(user_id, "/start"))
    buttons = env.telegram.named("SendMessage")[-1].buttons()
    for _, data in buttons:
        before = len(env.telegram.calls)
        await env.send(callback_update(user_id, data))
        new_calls = env.telegram.calls[before:]
        shown = [c for c in new_calls if c.method in ("EditMessageText", "SendMessage")]
        assert shown and shown[-1].text, data
        answered = [c for c in new_calls if c.method == "AnswerCallbackQuery"]
        assert answered and "outdated" not in answered[-1].text, data


async def test_every_backend_error_code_has_a_sentence_in_both_languages(env):
    from aiogram_i18n import I18nContext

    from bot.handlers.chat import error_sentence

    codes = [
        "provider_timeout",
        "provider_rate_limited",
        "provider_unavailable",
        "provider_error",
        "content_refused",
        "context_too_long",
        "provider_not_configured",
        "message_too_long",
        "duplicate_request",
        "unknown_model",
        "voice_unavailable",
        "images_not_supported",
        "unsupported_document",
        "document_unreadable",
        "image_generation_unavailable",
        "image_generation_failed",
        "transcription_failed",
        "invalid_attachment",
        "vip_required",
        "quota_exhausted",
        "unknown_mode",
        "instructions_too_long",
    ]
    # With the details the backend sends (its tests and the contract test keep them so).
    detailed = {
        "attachment_too_large": {"limit_bytes": 10 * 1024 * 1024, "size_bytes": 12_000_000},
        "audio_too_long": {"limit_s": 300, "duration_s": 301},
        "instructions_too_long": {"limit": 1000, "length": 1001},
        "unsupported_document": {"supported": ["pdf", "txt"]},
    }
    middleware = env.dp["i18n_middleware"]
    for locale in ("en", "ru"):
        i18n = I18nContext(locale=locale, core=middleware.core, manager=middleware.manager, data={})
        generic = i18n.get("error-generic")
        for code in codes:
            sentence = error_sentence(code, i18n, limit=4096)
            assert sentence and sentence != generic, (locale, code)
        for code, details in detailed.items():
            sentence = error_sentence(code, i18n, **details)
            assert sentence and sentence != generic, (locale, code)
        assert "10" in error_sentence(
            "attachment_too_large", i18n, **detailed["attachment_too_large"]
        )
        assert error_sentence("something_new", i18n) == generic
        # Fewer details than the sentence needs: an apology, not a crash.
        assert error_sentence("audio_too_long", i18n) == generic


async def test_redelivered_update_is_answered_once(env, user_id):
    env.fake.script("openai", text="only once")
    update = message_update(user_id, "Hello")
    await env.send(update)
    await env.send(update)
    assert [t.strip() for t in env.telegram.sent_texts()].count("only once") == 1
    assert len(env.fake.requests("openai")) == 1


async def test_without_drafts_the_answer_grows_by_editing_one_message(env, user_id):
    env.fake.script("openai", text="Growing answer in a group chat.", chunks=3, chunk_delay_s=0.05)
    update = message_update(user_id, "Hello group")
    update["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Team"}
    await env.send(update)
    assert env.telegram.named("SendMessageDraft") == []
    [placeholder] = env.telegram.named("SendMessage")
    assert placeholder.text == "Thinking…"
    final = env.telegram.named("EditMessageText")[-1]
    assert final.text.strip() == "Growing answer in a group chat."
    assert [t for t, _ in final.buttons()] == ["🆕 New chat", "🧠 Model"]


async def test_operators_see_their_commands_in_their_own_chat_only(env):
    from bot.main import set_commands
    from bot.tests.conftest import ADMIN_ID

    await set_commands(env.bot, env.dp)
    menus = {
        (c.params.get("scope", {}).get("chat_id"), c.params.get("language_code")): [
            x["command"] for x in c.params["commands"]
        ]
        for c in env.telegram.named("SetMyCommands")
    }
    assert set(menus) == {(chat, lang) for chat in (None, ADMIN_ID) for lang in (None, "ru", "en")}
    assert "refund" not in menus[(None, "en")]
    operator = menus[(ADMIN_ID, "ru")]
    assert operator[: len(menus[(None, "ru")])] == menus[(None, "ru")]
    assert {"admin", "find", "grant", "refund", "broadcast"} <= set(operator)


async def test_an_operator_who_never_started_the_bot_does_not_stop_its_start(env):
    from aiogram.exceptions import TelegramBadRequest

    from bot.main import set_commands

    def chat_not_found(method):
        if method.scope is None:
            return None
        return TelegramBadRequest(method=method, message="Bad Request: chat not found")

    env.telegram.failures["SetMyCommands"] = [chat_not_found]
    await set_commands(env.bot, env.dp)
    calls = env.telegram.named("SetMyCommands")
    assert {c.params.get("language_code") for c in calls if "scope" not in c.params} == {
        None,
        "ru",
        "en",
    }

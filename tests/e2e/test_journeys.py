"""Journeys through the real bot and backend processes, checked by what the user is shown."""

import pytest

from tests.e2e.conftest import (
    WEBHOOK_BASE_URL,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    System,
    TelegramUser,
    asked,
)
from tests.fakes.providers import Script
from tests.fakes.telegram import Call, utf16_len

MAIN_MENU = [
    "🆕 New chat",
    "🧠 Model",
    "🎨 Picture",
    "📊 Status",
    "⚙️ Settings",
    "❓ Help",
    "⭐ VIP",
]
AFTER_ANSWER = ["🆕 New chat", "🧠 Model"]
COMMANDS = [
    "start",
    "model",
    "new",
    "image",
    "status",
    "settings",
    "instructions",
    "forget",
    "subscribe",
    "help",
]
DEFAULT_ANSWER = Script().text
NOTHING_CHARGED = "Nothing was charged."


async def test_start_greets_with_the_main_menu_and_the_bot_is_registered(
    system: System, user: TelegramUser
):
    await user.send("/start")

    welcome = await user.next_message()
    assert welcome.text.startswith("Hi, Anna! I'm Pomogator")
    assert "10 messages are free" in welcome.text
    assert welcome.button_labels() == MAIN_MENU
    [webhook] = system.telegram.calls("setWebhook")
    assert webhook.ok
    assert webhook.params["url"] == WEBHOOK_BASE_URL + WEBHOOK_PATH
    assert webhook.params["secret_token"] == WEBHOOK_SECRET
    assert {"message", "callback_query", "pre_checkout_query"} <= set(
        webhook.params["allowed_updates"]
    )
    menus = {
        c.params.get("language_code"): c.params["commands"]
        for c in system.telegram.calls("setMyCommands")
        if c.ok
    }
    assert set(menus) == {None, "ru", "en"}
    for commands in menus.values():
        assert [c["command"] for c in commands] == COMMANDS
    ru = {c["command"]: c["description"] for c in menus["ru"]}
    en = {c["command"]: c["description"] for c in menus["en"]}
    assert en["model"] == "Choose the AI model"
    assert any("а" <= ch <= "я" for ch in ru["model"].lower())


async def test_question_is_streamed_then_answered_with_the_models_text(
    system: System, user: TelegramUser
):
    text = "Paris is the capital of France, and its largest city by far."
    # Deltas slower than the bot's draft interval (0.25 s), so the draft visibly grows.
    system.providers.script("openai", text=text, chunks=4, chunk_delay_s=0.4)
    question = f"What is the capital of France? (user {user.id})"

    sent = await user.send(question)
    answer = await user.next_message(lambda c: bool(c.buttons()))

    assert answer.text == text
    assert answer.button_labels() == AFTER_ANSWER
    drafts = [c for c in user.calls("sendMessageDraft") if c.seq < answer.seq]
    assert drafts and all(c.ok for c in drafts)
    assert drafts[0].text == "Thinking…"
    assert {c.params["draft_id"] for c in drafts} == {sent["message_id"]}
    assert any(text.startswith(c.text) and c.text != text for c in drafts[1:]), [
        c.text for c in drafts
    ]
    assert [c.params["action"] for c in user.calls("sendChatAction")][:1] == ["typing"]
    assert [m.text for m in user.messages()] == [text]
    assert system.answer_requests(question) == {"openai": 1}


ALL_MODELS = [
    ("ChatGPT", "Instant", "openai", {"model": "gpt-6.1-terra"}),
    ("ChatGPT", "Thinking", "openai", {"model": "gpt-6.1-sol"}),
    ("ChatGPT", "GPT-6 Astra", "openai", {"model": "gpt-6-astra"}),
    ("Perplexity", "Search", "perplexity", {"effort": "fast"}),
    ("Perplexity", "Research", "perplexity", {"effort": "medium", "background": True}),
    ("Perplexity", "Laboratory", "perplexity", {"effort": "high", "background": True}),
    ("DeepSeek", "Standard", "deepseek", {"model": "deepseek-flash"}),
    ("DeepSeek", "Thinking", "deepseek", {"model": "deepseek-v4-pro"}),
]


def label(text: str, current: bool) -> str:
    return f"✅ {text}" if current else text


@pytest.mark.parametrize(("provider", "model", "flavour", "check_body"), ALL_MODELS)
async def test_chosen_model_answers_the_next_question(
    system: System,
    user: TelegramUser,
    provider: str,
    model: str,
    flavour: str,
    check_body: dict[str, object],
):
    await user.send("/start")
    await user.next_message()
    await user.send("/model")
    providers_menu = await user.next_message()
    assert providers_menu.text == "Choose an assistant. Now: ChatGPT · Instant"
    assert providers_menu.button_labels() == ["✅ ChatGPT", "Perplexity", "DeepSeek", "☰ Menu"]

    provider_press = await user.press(providers_menu, label(provider, provider == "ChatGPT"))
    models_menu = await user.next_edit()
    assert models_menu.text == f"{provider}: choose a model."
    model_button = label(f"{provider} {model}", (provider, model) == ("ChatGPT", "Instant"))
    assert model_button in models_menu.button_labels()
    model_press = await user.press(models_menu, model_button)
    chosen = await user.next_edit()
    assert chosen.text.startswith(f"Done! Now answering: {provider} · {model}")
    assert chosen.button_labels() == ["☰ Menu"]
    # Each press was answered, so the button stopped spinning.
    answered = {c.params["callback_query_id"] for c in user.telegram.calls("answerCallbackQuery")}
    assert {provider_press["id"], model_press["id"]} <= answered

    question = f"Who answers user {user.id}?"
    answer = await user.ask(question)

    assert answer.text == DEFAULT_ANSWER
    assert system.answer_requests(question) == {flavour: 1}
    [request] = [r for r in system.providers.requests(flavour) if asked(r.body) == question]
    assert check_body.items() <= request.body.items()
    assert request.headers["authorization"].startswith(f"Bearer sk-e2e-{flavour}-")


async def test_eleventh_free_message_gets_the_paywall_and_reaches_no_model(
    system: System, user: TelegramUser
):
    questions = [f"Question {n} from {user.id}" for n in range(1, 12)]
    for question in questions[:10]:
        answer = await user.ask(question)
        assert answer.text == DEFAULT_ANSWER

    paywall = await user.ask(questions[10])

    assert paywall.text.startswith("You've used all 10 free messages.")
    assert "⭐ VIP" in paywall.button_labels()
    assert [system.answer_requests(q) for q in questions] == [{"openai": 1}] * 10 + [{}]
    assert "0 of 10" in await user.status()


async def test_update_with_a_wrong_secret_is_refused_and_never_handled(
    system: System, user: TelegramUser
):
    forged = user.telegram.message_update(user.user, f"Forged question {user.id}")
    unsigned = user.telegram.message_update(user.user, f"Unsigned question {user.id}")

    wrong = await system.post_raw_update(forged, secret="not-the-webhook-secret")
    missing = await system.post_raw_update(unsigned, secret=None)

    assert (wrong.status_code, missing.status_code) == (401, 401)
    # The user's own /start goes through: once it is answered, a forged update handled in the
    # background would have left its traces too.
    await user.send("/start")
    welcome = await user.next_message()
    assert welcome.text.startswith("Hi, Anna!")
    assert user.calls() == [welcome]
    assert system.answer_requests(forged["message"]["text"]) == {}
    assert system.answer_requests(unsigned["message"]["text"]) == {}


async def test_provider_failure_gets_an_apology_and_costs_nothing(
    system: System, user: TelegramUser
):
    system.providers.script("openai", fault="http_500")

    apology = await user.ask(f"Is the model up? (user {user.id})")

    assert apology.text.splitlines() == [
        "The model is unavailable right now.",
        NOTHING_CHARGED,
        "You can try again or choose another model.",
    ]
    assert apology.button_labels() == AFTER_ANSWER
    assert "10 of 10" in await user.status()


async def test_long_answer_arrives_in_several_messages_with_nothing_lost(
    system: System, user: TelegramUser
):
    paragraph = "This paragraph of the long answer is plain prose without any markup"
    text = "\n\n".join(f"{paragraph}, number {n}." for n in range(1, 200))[:8999] + "."
    assert len(text) == 9000
    system.providers.script("openai", text=text, chunks=6)

    last = await user.ask(f"Tell me everything (user {user.id})")

    parts = user.messages()
    assert len(parts) >= 3
    assert all(utf16_len(p.text) <= 4096 for p in parts)
    assert "".join(p.text for p in parts).split() == text.split()
    assert parts[-1] == last and last.button_labels() == AFTER_ANSWER
    assert all(not p.buttons() for p in parts[:-1])
    assert all(c.ok for c in user.calls())


async def test_flood_control_on_the_answer_is_waited_out(system: System, user: TelegramUser):
    system.telegram.fail_next("sendMessage", 429, retry_after=1, chat_id=user.id)

    answer = await user.ask(f"Will Telegram let this through? (user {user.id})")

    assert answer.text == DEFAULT_ANSWER
    refused, delivered = user.calls("sendMessage")
    assert (refused.ok, refused.error_code) == (False, 429)
    assert delivered == answer and delivered.text == refused.text
    assert delivered.time - refused.time >= 0.9  # retry_after was waited out


async def ask_while_the_model_is_down(system: System, user: TelegramUser) -> Call:
    """A question the model fails (so it costs nothing); its apology is the user's last reply.

    The bot answers one message at a time per user, in order: once this apology has arrived,
    everything the user sent before it has been dealt with.
    """
    system.providers.script("openai", fault="http_500")
    await user.send(f"Is anybody there? (user {user.id})")
    return await user.next_message(lambda c: NOTHING_CHARGED in c.text)


async def redeliver(user: TelegramUser, question: str) -> Call:
    """Deliver the same update twice, as Telegram does when it did not see the 200; the answer."""
    update = user.telegram.message_update(user.user, question)
    await user.deliver(update)
    await user.deliver(update)
    return await user.next_message(lambda c: bool(c.buttons()))


async def test_redelivered_update_is_charged_once(system: System, user: TelegramUser):
    question = f"Charge me once (user {user.id})"

    answer = await redeliver(user, question)
    await ask_while_the_model_is_down(system, user)

    assert answer.text == DEFAULT_ANSWER
    assert system.answer_requests(question) == {"openai": 1}
    assert "9 of 10" in await user.status()


async def test_redelivered_update_is_answered_once(system: System, user: TelegramUser):
    answer = await redeliver(user, f"Answer me once (user {user.id})")
    apology = await ask_while_the_model_is_down(system, user)

    assert [m.text for m in user.messages()] == [answer.text, apology.text]

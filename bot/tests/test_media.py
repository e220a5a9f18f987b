"""Voice, photos, documents and /image: real update JSON through the dispatcher, files served by
the loopback fake Bot API, the real backend answering through the fake providers.

What is asserted is what the user sees (texts, entities, the photo's bytes), which Bot API and
provider calls happened (or did not), and the backend's count of free messages.
"""

import base64
import time

from pydantic import SecretStr

from bot.tests.conftest import LiveBotEnv
from bot.tests.telegram import message_update
from tests.fakes.files import encrypted_pdf_bytes, ogg_bytes, pdf_bytes, png_bytes
from tests.fakes.telegram import Call

MB = 1024 * 1024


def user(env: LiveBotEnv, user_id: int, language: str = "en") -> dict:
    return env.telegram.user(user_id, language_code=language, username=f"anna{user_id}")


def sent(env: LiveBotEnv, user_id: int) -> list[Call]:
    """What the user saw arrive or change: messages, edits and photos, in order."""
    return [
        c
        for c in env.telegram.calls(chat_id=user_id)
        if c.ok and c.method in ("sendMessage", "editMessageText", "sendPhoto")
    ]


def texts(env: LiveBotEnv, user_id: int) -> list[str]:
    return [c.text or c.caption for c in sent(env, user_id)]


def entity_types(call: Call) -> list[str]:
    return [e["type"] for e in call.params.get("entities") or []]


def nothing_fetched_or_asked(env: LiveBotEnv) -> None:
    assert env.telegram.calls("getFile") == []
    assert env.telegram.downloads() == []
    assert env.fake.requests() == []


def transcriptions(env: LiveBotEnv) -> list:
    return [r for r in env.fake.requests("openai") if r.path.endswith("/audio/transcriptions")]


def answers_asked(env: LiveBotEnv, flavour: str = "openai") -> list:
    return [
        r for r in env.fake.requests(flavour) if r.path.endswith(("/responses", "/completions"))
    ]


def last_user_input(request) -> list:
    """The content parts of the last user turn of a Responses request."""
    turn = request.body["input"][-1]
    content = turn["content"]
    return content if isinstance(content, list) else [{"type": "input_text", "text": content}]


# --- voice ------------------------------------------------------------------------------------


async def test_voice_note_is_transcribed_shown_as_a_quote_and_answered(live_env, user_id):
    env = live_env
    env.fake.script("openai", transcript="What is the capital of France?", text="**Paris**.")
    voice = env.telegram.add_file(ogg_bytes(4000))
    await env.send(
        env.telegram.voice_update(user(env, user_id), file_id=voice["file_id"], duration=3)
    )

    assert [c.params["file_id"] for c in env.telegram.calls("getFile")] == [voice["file_id"]]
    assert [d.params["file_path"] for d in env.telegram.downloads()] == [voice["file_path"]]
    [heard] = transcriptions(env)
    assert heard.body["file"]["size"] == 4000
    assert heard.body["file"]["filename"].endswith(".ogg")
    shown = sent(env, user_id)
    quote = next(c for c in shown if c.text.startswith("🎙 You said:"))
    assert quote.text == "🎙 You said:\nWhat is the capital of France?"
    assert entity_types(quote) == ["expandable_blockquote"]
    assert shown[-1].text.strip() == "Paris."
    assert shown.index(quote) < len(shown) - 1
    [asked] = answers_asked(env)
    assert "What is the capital of France?" in str(last_user_input(asked))
    assert await env.left(user_id) == 9


async def test_audio_file_is_transcribed_and_answered(live_env, user_id):
    env = live_env
    env.fake.script("openai", transcript="Summarise the meeting.", text="Done.")
    audio = env.telegram.add_file(b"ID3" + bytes(3000))
    update = env.telegram.audio_update(
        user(env, user_id), file_id=audio["file_id"], duration=40, file_name="meeting.mp3"
    )
    await env.send(update)

    [heard] = transcriptions(env)
    assert heard.body["file"]["filename"] == "meeting.mp3"
    assert "🎙 You said:\nSummarise the meeting." in texts(env, user_id)
    assert texts(env, user_id)[-1].strip() == "Done."
    assert await env.left(user_id) == 9


async def test_round_video_is_transcribed_and_answered(live_env, user_id):
    env = live_env
    env.fake.script("openai", transcript="Hello there.", text="Hi!")
    note = env.telegram.add_file(bytes(8) + b"ftypisom" + bytes(2000))
    await env.send(
        env.telegram.video_note_update(user(env, user_id), file_id=note["file_id"], duration=5)
    )
    assert len(transcriptions(env)) == 1
    assert texts(env, user_id)[-1].strip() == "Hi!"
    assert await env.left(user_id) == 9


async def test_voice_in_a_group_turns_the_placeholder_into_the_transcript(live_env, user_id):
    env = live_env
    env.fake.script("openai", transcript="Who wrote Hamlet?", text="Shakespeare.")
    voice = env.telegram.add_file(ogg_bytes(3000))
    update = env.telegram.voice_update(user(env, user_id), file_id=voice["file_id"], duration=2)
    group = -100_500_000_000_000 - user_id
    update["message"]["chat"] = {"id": group, "type": "supergroup", "title": "Team"}
    await env.send(update)

    assert env.telegram.calls("sendMessageDraft") == []
    shown = sent(env, group)
    assert shown[0].method == "sendMessage" and shown[0].text == "🎙 Listening…"
    transcript = next(c for c in shown if c.text.startswith("🎙 You said:"))
    assert transcript.method == "editMessageText"
    assert transcript.params["message_id"] == shown[0].result["message_id"]
    answer = shown[-1]
    assert answer.text.strip() == "Shakespeare."
    assert answer.params.get("message_id") != shown[0].result["message_id"]


async def test_failed_transcription_is_apologised_for_and_refunded(live_env, user_id):
    env = live_env
    env.fake.script("openai", fault="http_500")
    voice = env.telegram.add_file(ogg_bytes(3000))
    await env.send(
        env.telegram.voice_update(user(env, user_id), file_id=voice["file_id"], duration=3)
    )
    assert "Nothing was charged." in texts(env, user_id)[-1]
    assert answers_asked(env) == []
    assert await env.left(user_id) == 10


async def test_voice_over_the_duration_limit_is_refused_before_downloading(
    live_env_factory, user_id
):
    env = await live_env_factory(voice_max_seconds=60)
    voice = env.telegram.add_file(ogg_bytes(3000))
    await env.send(
        env.telegram.voice_update(user(env, user_id), file_id=voice["file_id"], duration=61)
    )
    assert texts(env, user_id) == ["Voice messages up to 1:00 long, please — this one is 1:01."]
    nothing_fetched_or_asked(env)
    assert await env.left(user_id) == 10


async def test_voice_over_the_size_limit_is_refused_before_downloading(live_env_factory, user_id):
    env = await live_env_factory(voice_max_bytes=1 * MB)
    voice = env.telegram.add_file(ogg_bytes(3000))
    update = env.telegram.voice_update(
        user(env, user_id), file_id=voice["file_id"], duration=30, file_size=3 * MB
    )
    await env.send(update)
    assert texts(env, user_id) == ["This file is too big for me: 3 MB, and I can take up to 1 MB."]
    nothing_fetched_or_asked(env)
    assert await env.left(user_id) == 10


async def test_voice_without_transcription_configured_is_not_available(live_env_factory, user_id):
    env = await live_env_factory(openai_api_key=SecretStr(""))
    voice = env.telegram.add_file(ogg_bytes(3000))
    await env.send(
        env.telegram.voice_update(user(env, user_id, "ru"), file_id=voice["file_id"], duration=3)
    )
    assert texts(env, user_id) == [
        "Голосовые сообщения сейчас недоступны — напишите вопрос текстом."
    ]
    nothing_fetched_or_asked(env)


# --- photos -----------------------------------------------------------------------------------


async def test_photo_with_caption_reaches_the_model_as_image_input(live_env, user_id):
    env = live_env
    picture = png_bytes(8, 8)
    env.fake.script("openai", text="A tiny square.")
    photo = env.telegram.add_file(picture)
    update = env.telegram.photo_update(
        user(env, user_id), file_id=photo["file_id"], caption="What is on it?"
    )
    await env.send(update)

    assert [d.params["file_path"] for d in env.telegram.downloads()] == [photo["file_path"]]
    [asked] = answers_asked(env)
    parts = last_user_input(asked)
    images = [p for p in parts if p.get("type") == "input_image"]
    assert [p["image_url"] for p in images] == [
        "data:image/png;base64," + base64.b64encode(picture).decode()
    ]
    assert any("What is on it?" in str(p.get("text")) for p in parts)
    assert texts(env, user_id)[-1].strip() == "A tiny square."
    assert await env.left(user_id) == 9


async def test_photo_without_caption_is_still_answered(live_env, user_id):
    env = live_env
    env.fake.script("openai", text="A blue square.")
    photo = env.telegram.add_file(png_bytes(4, 4))
    await env.send(env.telegram.photo_update(user(env, user_id), file_id=photo["file_id"]))
    [asked] = answers_asked(env)
    assert [p["type"] for p in last_user_input(asked)].count("input_image") == 1
    assert texts(env, user_id)[-1].strip() == "A blue square."
    assert await env.left(user_id) == 9


async def test_picture_sent_as_a_file_is_looked_at(live_env, user_id):
    env = live_env
    picture = png_bytes(4, 4)
    env.fake.script("openai", text="A PNG.")
    file = env.telegram.add_file(picture)
    update = env.telegram.document_update(
        user(env, user_id), file_id=file["file_id"], file_name="shot.png", mime_type="image/png"
    )
    await env.send(update)
    [asked] = answers_asked(env)
    [image] = [p for p in last_user_input(asked) if p.get("type") == "input_image"]
    assert image["image_url"].startswith("data:image/png;base64,")
    assert await env.left(user_id) == 9


async def test_photo_over_the_size_limit_is_refused_before_downloading(live_env_factory, user_id):
    env = await live_env_factory(photo_max_bytes=1 * MB)
    photo = env.telegram.add_file(png_bytes(4, 4))
    update = env.telegram.photo_update(
        user(env, user_id), file_id=photo["file_id"], file_size=300 * MB
    )
    await env.send(update)
    [refusal] = texts(env, user_id)
    assert refusal.startswith("This file is too big for me")
    nothing_fetched_or_asked(env)
    assert await env.left(user_id) == 10


async def test_photo_to_a_text_only_model_is_offered_a_switch_then_answered(live_env, user_id):
    env = live_env
    await env.backend.register(
        user_id, username=None, first_name="Anna", last_name=None, language_code="en"
    )
    await env.backend.update_user(user_id, model="deepseek-standard")
    picture = png_bytes(6, 6)
    photo = env.telegram.add_file(picture)
    update = env.telegram.photo_update(
        user(env, user_id), file_id=photo["file_id"], caption="What colour?"
    )
    await env.send(update)

    [offer] = sent(env, user_id)
    assert offer.text.startswith("DeepSeek · Standard can't see pictures.")
    assert offer.params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    labels = offer.button_labels()
    assert "Switch to ChatGPT · Instant" in labels
    assert all(label.startswith("Switch to ") for label in labels)
    assert not any("DeepSeek" in label for label in labels)
    nothing_fetched_or_asked(env)
    assert await env.left(user_id) == 10

    env.fake.script("openai", text="Blue.")
    tap = env.telegram.callback_update(
        user(env, user_id), offer, button="Switch to ChatGPT · Instant"
    )
    # Telegram sends the offer with the photo it replied to: nothing is remembered by the bot.
    assert (
        tap["callback_query"]["message"]["reply_to_message"]["photo"] == update["message"]["photo"]
    )
    await env.send(tap)

    assert (await env.backend.profile(user_id)).model == "chatgpt-instant"
    switched = env.telegram.calls("editMessageText")[0]
    assert switched.text == "Done! Now answering: ChatGPT · Instant"
    assert [d.params["file_path"] for d in env.telegram.downloads()] == [photo["file_path"]]
    [asked] = answers_asked(env)
    [image] = [p for p in last_user_input(asked) if p.get("type") == "input_image"]
    assert image["image_url"].endswith(base64.b64encode(picture).decode())
    assert answers_asked(env, "deepseek") == []
    assert texts(env, user_id)[-1].strip() == "Blue."
    assert await env.left(user_id) == 9


async def test_backend_refusing_images_leads_to_the_same_offer(live_env, user_id):
    env = live_env
    await env.backend.register(
        user_id, username=None, first_name="Anna", last_name=None, language_code="en"
    )
    await env.backend.update_user(user_id, model="deepseek-standard")
    # The bot's cached catalog is out of date: it believes DeepSeek sees pictures.
    catalogs = env.dp["catalogs"]
    catalog = await catalogs.get()
    stale = catalog.model_copy(
        update={
            "providers": [
                p.model_copy(
                    update={"models": [m.model_copy(update={"images": True}) for m in p.models]}
                )
                for p in catalog.providers
            ]
        }
    )
    catalogs._value = (time.monotonic(), stale)
    photo = env.telegram.add_file(png_bytes(4, 4))
    update = env.telegram.photo_update(user(env, user_id), file_id=photo["file_id"])
    await env.send(update)

    offer = sent(env, user_id)[-1]
    assert "can't see pictures" in offer.text
    assert offer.params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    assert "Switch to ChatGPT · Instant" in offer.button_labels()
    assert answers_asked(env, "deepseek") == []
    assert await env.left(user_id) == 10


async def test_offer_names_the_model_the_backend_says_when_the_cached_profile_is_stale(
    live_env, user_id
):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/start"))
    # Changed elsewhere (another replica, an operator): the bot's cached profile says Instant.
    await env.backend.update_user(user_id, model="deepseek-standard")
    photo = env.telegram.add_file(png_bytes(4, 4))
    await env.send(env.telegram.photo_update(user(env, user_id), file_id=photo["file_id"]))

    offer = sent(env, user_id)[-1]
    assert offer.text.startswith("DeepSeek · Standard can't see pictures.")
    assert answers_asked(env, "deepseek") == []
    assert await env.left(user_id) == 10


# --- documents --------------------------------------------------------------------------------


async def test_pdf_question_is_answered_from_its_text(live_env, user_id):
    env = live_env
    env.fake.script("openai", text="The word is walrus.")
    pdf = env.telegram.add_file(pdf_bytes(["The secret word is walrus."]))
    update = env.telegram.document_update(
        user(env, user_id),
        file_id=pdf["file_id"],
        file_name="notes.pdf",
        mime_type="application/pdf",
        caption="What is the secret word?",
    )
    await env.send(update)

    assert len(env.telegram.downloads()) == 1
    [asked] = answers_asked(env)
    question = str(last_user_input(asked))
    assert "walrus" in question and "What is the secret word?" in question
    assert texts(env, user_id)[-1].strip() == "The word is walrus."
    assert await env.left(user_id) == 9


async def test_text_file_is_read(live_env, user_id):
    env = live_env
    env.fake.script("openai", text="Three items.")
    file = env.telegram.add_file(b"milk\nbread\nhoney\n")
    update = env.telegram.document_update(
        user(env, user_id), file_id=file["file_id"], file_name="list.txt", mime_type="text/plain"
    )
    await env.send(update)
    [asked] = answers_asked(env)
    assert "honey" in str(last_user_input(asked))
    assert texts(env, user_id)[-1].strip() == "Three items."
    assert await env.left(user_id) == 9


async def test_long_pdf_is_cut_and_the_user_is_told(live_env_factory, user_id):
    env = await live_env_factory(document_max_pages=1)
    env.fake.script("openai", text="It is about apples.")
    pdf = env.telegram.add_file(pdf_bytes(["Apples.", "Pears.", "Plums."]))
    update = env.telegram.document_update(
        user(env, user_id),
        file_id=pdf["file_id"],
        file_name="fruit.pdf",
        mime_type="application/pdf",
    )
    await env.send(update)
    final = texts(env, user_id)[-1]
    assert final.startswith("It is about apples.")
    assert "I read only its beginning" in final
    assert await env.left(user_id) == 9


async def test_unsupported_document_gets_the_list_of_what_works(live_env, user_id):
    env = live_env
    file = env.telegram.add_file(b"PK\x03\x04" + bytes(100))
    update = env.telegram.document_update(
        user(env, user_id),
        file_id=file["file_id"],
        file_name="table.xlsx",
        mime_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    await env.send(update)
    [refusal] = texts(env, user_id)
    assert refusal.startswith("I can't read this type of file. I read .pdf, .txt, .md")
    nothing_fetched_or_asked(env)
    assert await env.left(user_id) == 10


async def test_document_over_the_size_limit_is_refused_before_downloading(
    live_env_factory, user_id
):
    env = await live_env_factory(document_max_bytes=2 * MB)
    pdf = env.telegram.add_file(pdf_bytes(["Big."]))
    update = env.telegram.document_update(
        user(env, user_id, "ru"),
        file_id=pdf["file_id"],
        file_name="big.pdf",
        mime_type="application/pdf",
        file_size=5 * MB // 2,
    )
    await env.send(update)
    assert texts(env, user_id) == ["Файл слишком большой: 2.5 МБ, а я принимаю до 2 МБ."]
    nothing_fetched_or_asked(env)


async def test_unreadable_pdf_is_explained_and_not_charged(live_env, user_id):
    env = live_env
    pdf = env.telegram.add_file(encrypted_pdf_bytes())
    update = env.telegram.document_update(
        user(env, user_id),
        file_id=pdf["file_id"],
        file_name="locked.pdf",
        mime_type="application/pdf",
    )
    await env.send(update)
    assert texts(env, user_id)[-1].startswith("I couldn't find any text in this document")
    assert answers_asked(env) == []
    assert await env.left(user_id) == 10


async def test_document_answer_failing_is_refunded(live_env, user_id):
    env = live_env
    env.fake.script("openai", fault="http_500")
    file = env.telegram.add_file(b"print('hi')\n")
    update = env.telegram.document_update(
        user(env, user_id), file_id=file["file_id"], file_name="hi.py", mime_type="text/x-python"
    )
    await env.send(update)
    assert "Nothing was charged." in texts(env, user_id)[-1]
    assert await env.left(user_id) == 10


# --- /image -----------------------------------------------------------------------------------


async def test_image_command_sends_the_picture_and_charges_its_credits(live_env, user_id):
    env = live_env
    picture = png_bytes(16, 16, (200, 40, 40))
    env.fake.script("openai", image_png=picture)
    await env.send(env.telegram.message_update(user(env, user_id), "/image a red fox in the snow"))

    [drawn] = [r for r in env.fake.requests("openai") if r.path.endswith("/images/generations")]
    assert "a red fox in the snow" in drawn.body["prompt"]
    [photo] = env.telegram.calls("sendPhoto")
    assert photo.files["photo"] == picture
    assert photo.caption.startswith("🎨 ")
    assert "3 free messages used · 7 left" in photo.caption
    assert {c.params["action"] for c in env.telegram.calls("sendChatAction")} == {"upload_photo"}
    assert await env.left(user_id) == 7


async def test_image_without_a_description_gets_a_hint(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/image"))
    [hint] = texts(env, user_id)
    assert "/image a red fox in the snow, watercolor" in hint
    assert hint.endswith("A picture costs 3 free messages; with ⭐ VIP pictures are unlimited.")
    assert env.fake.requests() == []


async def test_picture_button_in_the_menu_explains_image(live_env, user_id):
    env = live_env
    await env.send(env.telegram.message_update(user(env, user_id), "/start"))
    [menu] = sent(env, user_id)
    assert "🎨 Picture" in menu.button_labels()
    await env.send(env.telegram.callback_update(user(env, user_id), menu, button="🎨 Picture"))
    assert "Write /image and what to draw" in texts(env, user_id)[-1]


async def test_picture_costing_more_than_is_left_gets_the_paywall(live_env_factory, user_id):
    env = await live_env_factory(picture_credits=11)
    await env.send(env.telegram.message_update(user(env, user_id), "/image a cat"))
    [paywall] = sent(env, user_id)
    assert paywall.text.startswith("🎨 A picture costs 11 free messages, and you have 10 left.")
    assert "⭐ VIP" in paywall.button_labels()
    assert env.fake.requests() == []
    assert await env.left(user_id) == 10


async def test_pictures_for_vip_only_offer_vip(live_env_factory, user_id):
    env = await live_env_factory(picture_vip_only=True)
    await env.send(env.telegram.message_update(user(env, user_id, "ru"), "/image кот"))
    [offer] = sent(env, user_id)
    assert offer.text.startswith("🎨 Картинки — возможность ⭐ VIP")
    assert ("⭐ VIP", "m:vip") in offer.buttons()
    assert env.fake.requests() == []


async def test_refused_picture_is_apologised_for_and_refunded(live_env, user_id):
    env = live_env
    env.fake.script("openai", fault="content_policy")
    await env.send(env.telegram.message_update(user(env, user_id), "/image something odd"))
    assert env.telegram.calls("sendPhoto") == []
    assert "Nothing was charged." in texts(env, user_id)[-1]
    assert await env.left(user_id) == 10


async def test_pictures_not_configured_are_declined_politely(live_env_factory, user_id):
    env = await live_env_factory(openai_api_key=SecretStr(""))
    await env.send(env.telegram.message_update(user(env, user_id), "/image a cat"))
    assert texts(env, user_id) == [
        "Drawing pictures isn't available right now — sorry! I can still answer in words."
    ]
    assert env.fake.requests() == []


# --- everything else --------------------------------------------------------------------------


async def test_sticker_and_location_get_what_works(live_env, user_id):
    env = live_env
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
    assert (
        texts(env, user_id)
        == [
            "I can read text, voice messages, photos and documents (PDF, text, code), "
            "but not this kind of message — please send one of those."
        ]
        * 2
    )
    nothing_fetched_or_asked(env)

"""Beyond text, through the real processes: a voice note, a photo, a document and /image.

Files live on the fake Telegram and are downloaded by the bot through getFile and the Bot API
file URL; the fake providers transcribe, look at photos and draw, as the real APIs do.
"""

import base64

from tests.e2e.conftest import INTERNAL_TOKEN, System, TelegramUser, asked
from tests.fakes.files import ogg_bytes, pdf_bytes, png_bytes
from tests.fakes.providers import Script
from tests.fakes.telegram import Call

DEFAULT_ANSWER = Script().text


async def free_left(system: System, user: TelegramUser) -> int:
    response = await system.http.get(
        f"{system.backend_url}/api/v1/users/{user.id}",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
    )
    response.raise_for_status()
    return int(response.json()["free_messages_left"])


def answer_bodies(system: System, flavour: str) -> list[dict]:
    return [
        r.body
        for r in system.providers.requests(flavour)
        if r.path.endswith(("/responses", "/chat/completions"))
    ]


def has_quote(call: Call) -> bool:
    entities = call.params.get("entities") or []
    return any(e.get("type") == "expandable_blockquote" for e in entities)


async def test_voice_note_is_transcribed_shown_and_answered(system: System, user: TelegramUser):
    said = f"How tall is the Eiffel tower? (user {user.id})"
    system.providers.script("openai", transcript=said, text="About 330 metres.")
    await user.send("/start")
    await user.next_message()
    voice = ogg_bytes(4096)
    file = system.telegram.add_file(voice)

    await user.deliver(system.telegram.voice_update(user.user, file_id=file["file_id"], duration=4))

    transcript = await user.next_message(has_quote)
    assert said in transcript.text
    answer = await user.next_message(lambda c: bool(c.buttons()))
    assert "About 330 metres." in answer.text
    [download] = system.telegram.downloads(file["file_path"])
    assert download.ok
    [transcription] = [
        r for r in system.providers.requests("openai") if r.path.endswith("/transcriptions")
    ]
    assert transcription.body["file"]["size"] == len(voice)
    assert asked(answer_bodies(system, "openai")[-1]) == said
    assert await free_left(system, user) == 9


async def test_photo_with_a_caption_is_answered_by_the_chosen_model(
    system: System, user: TelegramUser
):
    system.providers.script("openai", text="A small red square.")
    await user.send("/start")
    await user.next_message()
    picture = png_bytes(16, 16)
    file = system.telegram.add_file(picture)

    await user.deliver(
        system.telegram.photo_update(user.user, file_id=file["file_id"], caption="What is this?")
    )

    answer = await user.next_message(lambda c: bool(c.buttons()))
    assert "A small red square." in answer.text
    content = answer_bodies(system, "openai")[-1]["input"][-1]["content"]
    assert content[0] == {"type": "input_text", "text": "What is this?"}
    assert content[1]["image_url"] == "data:image/png;base64," + base64.b64encode(picture).decode()
    assert await free_left(system, user) == 9


async def test_document_question_is_answered_from_its_text(system: System, user: TelegramUser):
    system.providers.script("openai", text="Revenue was 42 million.")
    await user.send("/start")
    await user.next_message()
    report = pdf_bytes(["Quarterly report.", "Revenue: 42 million roubles."])
    file = system.telegram.add_file(report)

    await user.deliver(
        system.telegram.document_update(
            user.user,
            file_id=file["file_id"],
            file_name="report.pdf",
            mime_type="application/pdf",
            caption="What was the revenue?",
        )
    )

    answer = await user.next_message(lambda c: bool(c.buttons()))
    assert "Revenue was 42 million." in answer.text
    question = asked(answer_bodies(system, "openai")[-1])
    assert question.startswith("What was the revenue?")
    assert "Revenue: 42 million roubles." in question
    assert await free_left(system, user) == 9


async def test_image_command_delivers_a_photo_and_charges_its_price(
    system: System, user: TelegramUser
):
    drawn = png_bytes(32, 32, (10, 200, 90))
    system.providers.script("openai", image_png=drawn)
    await user.send("/start")
    await user.next_message()

    await user.send("/image a green square on white")

    photo = await user.next_shown("sendPhoto")
    assert photo.files["photo"] == drawn
    [generation] = [
        r for r in system.providers.requests("openai") if r.path.endswith("/images/generations")
    ]
    assert generation.body["prompt"] == "a green square on white"
    assert await free_left(system, user) == 7

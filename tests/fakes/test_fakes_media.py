"""The fakes' media routes, driven over loopback HTTP by the real clients: aiogram and openai."""

import base64
import io
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, Update
from pydantic import BaseModel

from tests.fakes.files import (
    PDF_PASSWORD,
    encrypted_pdf_bytes,
    ogg_bytes,
    pdf_bytes,
    png_bytes,
    png_size,
)
from tests.fakes.providers import FakeProviders, Script, start_fake_providers
from tests.fakes.telegram import DOWNLOAD_LIMIT, FakeTelegram, start_fake_telegram

CHAT_ID = 4242


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with start_fake_telegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(tg.token, session=session)
    yield bot
    await session.close()


@pytest.fixture
async def fakes() -> AsyncIterator[FakeProviders]:
    async with start_fake_providers() as fake:
        yield fake


@pytest.fixture
def client(fakes: FakeProviders) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fakes.base_url("openai"), api_key="k", max_retries=0)


def extras(model: BaseModel, where: str = "message") -> list[str]:
    """Fields aiogram did not know, anywhere in the object: names the Bot API does not have."""
    found = [f"{where}.{name}" for name in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                found += extras(item, f"{where}.{name}[{index}]")
    return found


# --- Telegram: files users send -------------------------------------------------------------


async def test_a_voice_note_is_found_by_get_file_and_downloaded_by_aiogram(tg, bot):
    voice = ogg_bytes(5000)
    added = tg.add_file(voice)
    update = Update.model_validate(
        tg.voice_update(tg.user(CHAT_ID), file_id=added["file_id"], duration=4)
    )
    message = update.message
    assert message is not None and message.voice is not None
    assert extras(message) == []
    assert message.voice.file_size == len(voice)

    file = await bot.get_file(message.voice.file_id)
    downloaded = await bot.download(file)

    assert downloaded is not None and downloaded.read() == voice
    assert file.file_path == added["file_path"] and file.file_path.startswith("voice/")
    assert file.file_unique_id == message.voice.file_unique_id
    [download] = tg.downloads()
    assert download.ok and download.params == {"file_path": file.file_path}


async def test_get_file_refuses_an_unknown_file_id(tg, bot):
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("AwACAgIAAxkBAAIBno-such-file")
    assert tg.downloads() == []


async def test_get_file_refuses_a_file_over_20_mb(tg, bot):
    big = tg.add_file(b"\0" * (DOWNLOAD_LIMIT + 1))

    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big["file_id"])


async def test_a_download_with_a_wrong_token_or_path_is_refused_and_recorded(tg):
    path = tg.add_file(pdf_bytes(["x"]))["file_path"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{tg.base_url}/file/bot1:wrong/{path}") as wrong_token:
            assert wrong_token.status == 401
            assert (await wrong_token.json())["description"] == "Unauthorized"
        async with http.get(f"{tg.base_url}/file/bot{tg.token}/documents/nope") as wrong_path:
            assert wrong_path.status == 404

    assert [(c.ok, c.error_code) for c in tg.downloads()] == [(False, 401), (False, 404)]


async def test_a_failing_download_can_be_scripted(tg, bot):
    file = tg.add_file(ogg_bytes())
    tg.fail_next("downloadFile", 500)

    with pytest.raises(aiohttp.ClientResponseError):
        await bot.download(file["file_id"])
    assert (await bot.download(file["file_id"])) is not None


async def test_a_file_added_over_http_is_served(tg):
    data = png_bytes(3, 3)
    async with aiohttp.ClientSession() as http:
        body = {"data": base64.b64encode(data).decode(), "file_id": "ph-1"}
        async with http.post(f"{tg.base_url}/_control/files", json=body) as added:
            file = (await added.json())["file"]
        async with http.get(f"{tg.base_url}/file/bot{tg.token}/{file['file_path']}") as got:
            served = await got.read()

    assert file["file_id"] == "ph-1" and file["file_size"] == len(data)
    assert served == data


async def test_media_updates_have_the_bot_api_shapes(tg):
    user = tg.user(CHAT_ID)
    pdf = tg.add_file(pdf_bytes(["Report"]))
    updates = {
        "voice": tg.voice_update(user, file_id="v1", duration=3, file_size=900),
        "audio": tg.audio_update(
            user, file_id="a1", duration=61, file_size=2000, file_name="song.mp3", title="Song"
        ),
        "video_note": tg.video_note_update(user, file_id="n1", duration=7, file_size=3000),
        "photo": tg.photo_update(user, file_id="p1", file_size=120_000, caption="What is it?"),
        "document": tg.document_update(
            user,
            file_id=pdf["file_id"],
            file_name="report.pdf",
            mime_type="application/pdf",
            caption="Summarise",
        ),
    }
    for kind, raw in updates.items():
        message = Update.model_validate(raw).message
        assert message is not None and message.content_type == kind
        assert extras(message) == [], kind

    photo = Update.model_validate(updates["photo"]).message.photo
    assert [(p.width, p.height) for p in photo] == [(90, 68), (320, 240), (1280, 960)]
    assert photo[-1].file_id == "p1" and photo[-1].file_size == 120_000
    assert len({p.file_id for p in photo}) == len({p.file_unique_id for p in photo}) == 3
    document = Update.model_validate(updates["document"]).message
    assert document.document.file_size == pdf["file_size"] and document.caption == "Summarise"
    assert Update.model_validate(updates["audio"]).message.audio.title == "Song"


# --- Telegram: files the bot sends ----------------------------------------------------------


async def test_send_photo_keeps_the_upload_and_answers_with_photo_sizes(tg, bot):
    picture = png_bytes(1600, 1200)

    sent = await bot.send_photo(
        CHAT_ID,
        BufferedInputFile(picture, filename="cat.png"),
        caption="<b>A cat</b> for you",
        parse_mode="HTML",
    )

    [call] = tg.calls("sendPhoto")
    assert call.files["photo"] == picture
    assert call.params["photo"] == {"file_name": "cat.png", "size": len(picture)}
    assert call.caption == "<b>A cat</b> for you"
    assert sent.caption == "A cat for you"
    assert [(e.type, e.offset, e.length) for e in sent.caption_entities] == [("bold", 0, 5)]
    assert [(p.width, p.height) for p in sent.photo] == [
        (90, 68),
        (320, 240),
        (800, 600),
        (1280, 960),
        (1600, 1200),
    ]
    downloaded = await bot.download(sent.photo[-1].file_id)
    assert downloaded is not None and downloaded.read() == picture


@pytest.mark.parametrize(
    ("photo", "caption", "error"),
    [
        (b"not a picture", None, "IMAGE_PROCESS_FAILED"),
        (png_bytes(2, 2), "x" * 1025, "message caption is too long"),
        (png_bytes(2, 2), "<b>open", "Can't find end tag"),
        (png_bytes(1, 40), None, "PHOTO_INVALID_DIMENSIONS"),
    ],
    ids=["not-an-image", "long-caption", "broken-html", "too-narrow"],
)
async def test_send_photo_refuses_what_telegram_refuses(tg, bot, photo, caption, error):
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_photo(
            CHAT_ID, BufferedInputFile(photo, "p.png"), caption=caption, parse_mode="HTML"
        )
    [call] = tg.calls("sendPhoto")
    assert not call.ok


async def test_send_document_answers_with_a_document(tg, bot):
    report = pdf_bytes(["Page one"])

    sent = await bot.send_document(CHAT_ID, BufferedInputFile(report, "report.pdf"))

    [call] = tg.calls("sendDocument")
    assert call.files["document"] == report
    assert sent.document is not None and extras(sent) == []
    assert (sent.document.file_name, sent.document.mime_type) == ("report.pdf", "application/pdf")
    assert sent.document.file_size == len(report)


# --- Providers: transcription ---------------------------------------------------------------


async def test_a_transcription_through_the_sdk_hears_the_script(fakes, client):
    voice = ogg_bytes(3000)
    fakes.script("openai", transcript="Какая столица Франции?", audio_seconds=2.5)

    result = await client.audio.transcriptions.create(
        model="gpt-transcribe", file=("voice.ogg", voice, "audio/ogg"), language="ru"
    )

    assert result.text == "Какая столица Франции?"
    assert result.usage is not None and result.usage.type == "duration"
    assert result.usage.seconds == 2.5
    [request] = fakes.requests("openai")
    assert request.path == "/openai/v1/audio/transcriptions"
    assert request.body == {
        "model": "gpt-transcribe",
        "language": "ru",
        "file": {"filename": "voice.ogg", "size": len(voice), "content_type": "audio/ogg"},
    }


async def test_a_transcription_as_plain_text(client):
    text = await client.audio.transcriptions.create(
        model="whisper-1", file=("voice.oga", ogg_bytes(), "audio/ogg"), response_format="text"
    )

    assert text == Script().transcript


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (("voice.txt", ogg_bytes(), "text/plain"), "Invalid file format"),
        (("voice.ogg", b"RIFF" + bytes(100), "audio/ogg"), "corrupted or unsupported"),
    ],
    ids=["not-audio", "not-ogg"],
)
async def test_a_transcription_of_something_else_is_refused(client, file, message):
    with pytest.raises(openai.BadRequestError, match=message):
        await client.audio.transcriptions.create(model="gpt-transcribe", file=file)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http_500", openai.InternalServerError),
        ("http_429", openai.RateLimitError),
        ("slow", openai.APITimeoutError),
    ],
)
async def test_faults_reach_a_transcription(fakes, client, fault, error):
    fakes.script("openai", fault=fault, slow_s=5.0)

    with pytest.raises(error):
        await client.audio.transcriptions.create(
            model="gpt-transcribe", file=("voice.ogg", ogg_bytes(), "audio/ogg"), timeout=0.3
        )


# --- Providers: pictures --------------------------------------------------------------------


async def test_a_picture_through_the_sdk_is_the_scripts_png(fakes, client):
    picture = png_bytes(8, 8, (1, 2, 3))
    fakes.script("openai", image_png=picture, input_tokens=20, image_tokens=1056)

    result = await client.images.generate(
        model="gpt-image-2.6-flare", prompt="A red fox in snow", size="1024x1024"
    )

    assert result.data is not None and len(result.data) == 1
    assert base64.b64decode(result.data[0].b64_json or "") == picture
    assert (result.size, result.output_format) == ("1024x1024", "png")
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (20, 1056)
    assert result.usage.total_tokens == 1076
    assert result.usage.input_tokens_details.text_tokens == 20
    [request] = fakes.requests("openai")
    assert request.body["prompt"] == "A red fox in snow"
    assert request.body["model"] == "gpt-image-2.6-flare"


async def test_the_default_picture_is_a_valid_png(client):
    result = await client.images.generate(model="gpt-image-2.6-flare", prompt="Anything")

    data = base64.b64decode(result.data[0].b64_json or "")
    width, height = png_size(data)
    assert (width, height) == (64, 64)
    assert len(_png_pixels(data)) == height * (1 + 3 * width)


async def test_a_blocked_picture_is_moderation_blocked(fakes, client):
    fakes.script("openai", fault="content_policy")

    with pytest.raises(openai.BadRequestError) as refused:
        await client.images.generate(model="gpt-image-2.6-flare", prompt="Something bad")

    assert refused.value.code == "moderation_blocked"


async def test_a_failing_picture_is_a_server_error(fakes, client):
    fakes.script("openai", fault="http_500", fault_count=1)

    with pytest.raises(openai.InternalServerError):
        await client.images.generate(model="gpt-image-2.6-flare", prompt="A fox")
    assert (await client.images.generate(model="gpt-image-2.6-flare", prompt="A fox")).data


async def test_the_script_over_http_takes_the_transcript_and_the_png(fakes, client):
    picture = png_bytes(4, 4)
    settings: dict[str, Any] = {
        "flavour": "openai",
        "transcript": "Over HTTP",
        "image_png": base64.b64encode(picture).decode(),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fakes.root_url}/_control/script", json=settings) as answer,
    ):
        assert answer.status == 200
        assert (await answer.json())["script"]["image_png"] == settings["image_png"]

    heard = await client.audio.transcriptions.create(
        model="gpt-transcribe", file=("v.ogg", ogg_bytes(), "audio/ogg")
    )
    drawn = await client.images.generate(model="gpt-image-2.6-flare", prompt="A fox")
    assert heard.text == "Over HTTP"
    assert base64.b64decode(drawn.data[0].b64_json or "") == picture


async def test_image_input_reaches_the_provider_as_sent(fakes, client):
    url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()

    await client.responses.create(
        model="gpt-5.5",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": url, "detail": "auto"},
                ],
            }
        ],
    )

    [request] = fakes.requests("openai")
    assert request.body["input"][0]["content"][1] == {
        "type": "input_image",
        "image_url": url,
        "detail": "auto",
    }


# --- Sample files ---------------------------------------------------------------------------


def test_pypdf_extracts_the_text_of_each_page():
    pypdf = pytest.importorskip("pypdf")
    pages = ["First page\nsecond line (with brackets) \\ slash", "Вторая страница: привет"]

    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(pages)), strict=True)

    assert [page.extract_text() for page in reader.pages] == pages
    assert not reader.is_encrypted


def test_an_encrypted_pdf_opens_only_with_its_password():
    pypdf = pytest.importorskip("pypdf")
    data = encrypted_pdf_bytes(["Secret text"])

    locked = pypdf.PdfReader(io.BytesIO(data))
    assert locked.is_encrypted
    assert locked.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED
    with pytest.raises(pypdf.errors.FileNotDecryptedError):
        locked.pages[0].extract_text()

    opened = pypdf.PdfReader(io.BytesIO(data), password=PDF_PASSWORD)
    assert opened.pages[0].extract_text() == "Secret text"


def _png_pixels(data: bytes) -> bytes:
    """The decompressed image data, every chunk's CRC checked on the way."""
    index, pixels = 8, b""
    while index < len(data):
        (length,) = struct.unpack(">I", data[index : index + 4])
        kind, body = data[index + 4 : index + 8], data[index + 8 : index + 8 + length]
        (crc,) = struct.unpack(">I", data[index + 8 + length : index + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IDAT":
            pixels += body
        index += 12 + length
    return zlib.decompress(pixels)


def test_png_bytes_is_a_valid_png_of_the_colour():
    data = png_bytes(3, 2, (10, 20, 30))

    assert png_size(data) == (3, 2)
    assert _png_pixels(data) == (b"\x00" + bytes((10, 20, 30)) * 3) * 2


def test_ogg_bytes_starts_with_the_capture_pattern():
    data = ogg_bytes(1000)

    assert data.startswith(b"OggS") and b"OpusHead" in data[:64]
    assert len(data) == 1000

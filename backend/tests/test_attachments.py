"""Voice, photos, documents and pictures through POST /api/v1/messages: the one answer path.

Real adapters and the fake OpenAI/Perplexity/DeepSeek server on loopback, real PostgreSQL.
Every refusal happens before any provider call and takes nothing; every failure refunds.
"""

import base64
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from backend.models.database import CreditHistory, User
from backend.services.providers.base import Turn
from backend.services.providers.chat_completions import chat_messages
from backend.tests.fixtures import answering_client, fast_catalog, provider_settings
from backend.tests.test_messages import message_rows, new_user
from tests.fakes.files import ogg_bytes, pdf_bytes, png_bytes

PNG = png_bytes(4, 4)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def attachment(data: bytes, media_type: str, **extra) -> dict:
    return {"data": base64.b64encode(data).decode(), "media_type": media_type, **extra}


async def send(api, telegram_id: int, kind: str, text: str = "", **extra):
    body = {"telegram_id": telegram_id, "kind": kind, "text": text, **extra}
    return await api.post("/api/v1/messages", json=body)


async def free_left(api, telegram_id: int) -> int:
    return (await api.get(f"/api/v1/users/{telegram_id}")).json()["free_messages_left"]


def answer_requests(fake, flavour: str) -> list:
    return [r for r in fake.requests(flavour) if r.path.endswith(("/responses", "/completions"))]


@pytest.fixture
async def limited_api(settings, catalog, engine, fake_providers):
    """The backend with small attachment limits, to show them enforced."""
    limited = provider_settings(settings, fake_providers).model_copy(
        update={"photo_max_bytes": 100, "voice_max_seconds": 60, "document_max_bytes": 200}
    )
    client, registry = await answering_client(limited, fast_catalog(catalog), engine)
    yield client
    await client.aclose()
    await registry.aclose()


@pytest.fixture
async def no_openai_api(settings, catalog, engine, fake_providers):
    """The backend with no OpenAI key: no voice, no pictures."""
    client, registry = await answering_client(
        provider_settings(settings, fake_providers, without=("openai",)),
        fast_catalog(catalog),
        engine,
    )
    yield client
    await client.aclose()
    await registry.aclose()


# --- photos ---------------------------------------------------------------------------------


async def test_photo_reaches_a_responses_model_as_input_image_with_its_caption(
    api, fake_providers, committing_sessions
):
    telegram_id = await new_user(api)
    response = await send(
        api, telegram_id, "photo", "What is on it?", attachment=attachment(PNG, "image/png")
    )
    assert response.status_code == 200, response.text
    assert response.json()["credits_charged"] == 1
    [request] = answer_requests(fake_providers, "openai")
    assert request.body["input"][-1] == {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is on it?"},
            {"type": "input_image", "image_url": PNG_URL, "detail": "auto"},
        ],
    }
    [row] = await message_rows(committing_sessions, telegram_id)
    # The image is never stored; history keeps a placeholder.
    assert (row.kind, row.request_text) == ("photo", "[photo] What is on it?")
    assert await free_left(api, telegram_id) == 9


async def test_photo_without_caption_is_described(api, fake_providers):
    telegram_id = await new_user(api)
    response = await send(api, telegram_id, "photo", attachment=attachment(PNG, "image/png"))
    assert response.status_code == 200
    content = answer_requests(fake_providers, "openai")[-1].body["input"][-1]["content"]
    assert content[0] == {"type": "input_text", "text": "Describe this picture."}


async def test_later_turns_see_the_photo_as_a_placeholder_not_the_image(api, fake_providers):
    fake_providers.script("openai", text="A red square.")
    telegram_id = await new_user(api)
    await send(api, telegram_id, "photo", "What is it?", attachment=attachment(PNG, "image/png"))
    await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Why red?"})
    assert answer_requests(fake_providers, "openai")[-1].body["input"] == [
        {"role": "user", "content": "[photo] What is it?"},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": "Why red?"},
    ]


async def test_photo_to_a_perplexity_model_is_sent_as_input_image(api, fake_providers):
    telegram_id = await new_user(api, model="perplexity-search")
    response = await send(
        api, telegram_id, "photo", "Where?", attachment=attachment(PNG, "image/png")
    )
    assert response.status_code == 200
    content = answer_requests(fake_providers, "perplexity")[-1].body["input"][-1]["content"]
    assert content[1] == {"type": "input_image", "image_url": PNG_URL, "detail": "auto"}


async def test_photo_to_a_text_only_model_is_refused_with_models_that_take_images(
    api, fake_providers, committing_sessions
):
    telegram_id = await new_user(api, model="deepseek-standard")
    response = await send(api, telegram_id, "photo", "Hm?", attachment=attachment(PNG, "image/png"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "images_not_supported"
    assert error["details"]["model"] == "deepseek-standard"
    assert "chatgpt-instant" in error["details"]["image_models"]
    assert not any(key.startswith("deepseek") for key in error["details"]["image_models"])
    assert fake_providers.requests() == []
    assert await message_rows(committing_sessions, telegram_id) == []
    assert await free_left(api, telegram_id) == 10


def test_chat_completions_send_a_photo_as_image_url_parts_after_the_system_prompt():
    messages = chat_messages("Be brief.", [Turn("user", "What is it?", (PNG_URL,))])
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": PNG_URL}},
            ],
        },
    ]


async def test_photo_over_the_size_limit_is_refused_before_any_provider_call(
    limited_api, fake_providers
):
    telegram_id = await new_user(limited_api)
    big = png_bytes(64, 64, (1, 2, 3)) + b"\x00" * 200
    response = await send(
        limited_api, telegram_id, "photo", attachment=attachment(big, "image/png")
    )
    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"limit_bytes": 100, "size_bytes": len(big)}
    assert fake_providers.requests() == []
    assert await free_left(limited_api, telegram_id) == 10


async def test_attachment_that_is_not_base64_is_refused(api, fake_providers):
    telegram_id = await new_user(api)
    bad = {"data": "not base64!", "media_type": "image/png"}
    response = await send(api, telegram_id, "photo", attachment=bad)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_attachment"
    assert fake_providers.requests() == []


# --- documents ------------------------------------------------------------------------------


async def test_pdf_question_is_answered_with_the_document_as_context(
    api, fake_providers, committing_sessions
):
    telegram_id = await new_user(api)
    pdf = pdf_bytes(["Quarterly revenue was 42 million."])
    response = await send(
        api,
        telegram_id,
        "document",
        "What was the revenue?",
        attachment=attachment(pdf, "application/pdf", filename="report.pdf"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["document_truncated"] is False
    content = answer_requests(fake_providers, "openai")[-1].body["input"][-1]["content"]
    assert content.startswith('What was the revenue?\n\n<document name="report.pdf">\n')
    assert "Quarterly revenue was 42 million." in content
    [row] = await message_rows(committing_sessions, telegram_id)
    assert row.request_text == "[document: report.pdf] What was the revenue?"
    assert await free_left(api, telegram_id) == 9


async def test_document_longer_than_the_model_budget_is_cut_and_the_user_told(api, fake_providers):
    # chatgpt-thinking has a 60-token budget in the test catalog.
    telegram_id = await new_user(api, model="chatgpt-thinking")
    text = "word " * 2000
    response = await send(
        api,
        telegram_id,
        "document",
        attachment=attachment(text.encode(), "text/plain", filename="long.txt"),
    )
    assert response.status_code == 200
    assert response.json()["document_truncated"] is True
    content = answer_requests(fake_providers, "openai")[-1].body["input"][-1]["content"]
    assert content.startswith("Summarise this document and its main points.")
    assert len(content) < 400


async def test_unsupported_document_lists_what_works_and_charges_nothing(api, fake_providers):
    telegram_id = await new_user(api)
    response = await send(
        api,
        telegram_id,
        "document",
        attachment=attachment(b"PK\x03\x04zip", "application/zip", filename="photos.zip"),
    )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_document"
    assert {"pdf", "txt", "md", "py"} <= set(error["details"]["supported"])
    assert fake_providers.requests() == []
    assert await free_left(api, telegram_id) == 10


async def test_unreadable_pdf_is_refused_and_charges_nothing(api, fake_providers):
    telegram_id = await new_user(api)
    response = await send(
        api,
        telegram_id,
        "document",
        attachment=attachment(b"%PDF-1.7 garbage", "application/pdf", filename="x.pdf"),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "document_unreadable"
    assert fake_providers.requests() == []
    assert await free_left(api, telegram_id) == 10


# --- voice ----------------------------------------------------------------------------------


async def test_voice_note_is_transcribed_then_answered_as_if_typed(
    api, fake_providers, committing_sessions
):
    fake_providers.script("openai", transcript="What is the capital of France?", text="Paris.")
    telegram_id = await new_user(api)
    voice = ogg_bytes(3000)
    events = []
    body = {
        "telegram_id": telegram_id,
        "kind": "voice",
        "stream": True,
        "attachment": attachment(voice, "audio/ogg", duration_s=3),
    }
    async with api.stream("POST", "/api/v1/messages", json=body) as response:
        assert response.status_code == 200
        events = [json.loads(line) async for line in response.aiter_lines() if line]
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["start", "transcript"]
    assert events[1]["text"] == "What is the capital of France?"
    assert kinds[-1] == "done"
    assert events[-1]["transcript"] == "What is the capital of France?"
    assert events[-1]["text"] == "Paris."
    transcription, answer = fake_providers.requests("openai")
    assert transcription.path.endswith("/audio/transcriptions")
    assert transcription.body["model"] == "gpt-transcribe"
    assert transcription.body["file"]["size"] == len(voice)
    assert answer.body["input"][-1] == {"role": "user", "content": "What is the capital of France?"}
    [row] = await message_rows(committing_sessions, telegram_id)
    assert (row.kind, row.request_text) == ("voice", "What is the capital of France?")
    # 3 s at $0.0045/min, plus 12 input and 34 output tokens of gpt-6.1-terra
    assert row.cost_usd == Decimal("0.000225") + Decimal("0.000182")
    assert await free_left(api, telegram_id) == 9


async def test_voice_longer_than_the_limit_is_refused_before_transcription(
    limited_api, fake_providers
):
    telegram_id = await new_user(limited_api)
    response = await send(
        limited_api,
        telegram_id,
        "voice",
        attachment=attachment(ogg_bytes(), "audio/ogg", duration_s=61),
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "audio_too_long",
        "message": "The recording is 61 s long; the limit is 60 s.",
        "details": {"limit_s": 60, "duration_s": 61},
    }
    assert fake_providers.requests() == []
    assert await free_left(limited_api, telegram_id) == 10


async def test_voice_without_a_transcription_key_is_unavailable_and_free(
    no_openai_api, fake_providers
):
    telegram_id = await new_user(no_openai_api, model="deepseek-standard")
    response = await send(
        no_openai_api, telegram_id, "voice", attachment=attachment(ogg_bytes(), "audio/ogg")
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "voice_unavailable"
    assert fake_providers.requests() == []
    assert await free_left(no_openai_api, telegram_id) == 10
    catalog = (await no_openai_api.get("/api/v1/models")).json()
    assert catalog["features"]["voice"] is False
    assert catalog["features"]["image_generation"] is False


async def test_failed_transcription_is_refunded(api, fake_providers, committing_sessions):
    fake_providers.script("openai", fault="http_500")
    telegram_id = await new_user(api)
    response = await send(
        api, telegram_id, "voice", attachment=attachment(ogg_bytes(), "audio/ogg")
    )
    assert response.status_code == 503
    assert response.json()["error"]["details"]["refunded"] is True
    [row] = await message_rows(committing_sessions, telegram_id)
    assert (row.status, row.error_code) == ("failed", "provider_unavailable")
    assert [r.path for r in fake_providers.requests("openai")] == [
        "/openai/v1/audio/transcriptions"
    ]
    assert await free_left(api, telegram_id) == 10


# --- pictures -------------------------------------------------------------------------------


async def ledger(committing_sessions, telegram_id: int) -> list[tuple[str, int]]:
    async with committing_sessions() as session:
        rows = await session.execute(
            select(CreditHistory.kind, CreditHistory.delta)
            .join(User, User.id == CreditHistory.user_id)
            .where(User.telegram_id == telegram_id)
            .order_by(CreditHistory.id)
        )
        return [(kind, delta) for kind, delta in rows]


async def test_picture_is_generated_and_costs_the_configured_credits(
    api, fake_providers, committing_sessions
):
    picture = png_bytes(8, 8, (1, 2, 3))
    fake_providers.script("openai", image_png=picture)
    telegram_id = await new_user(api)
    response = await send(api, telegram_id, "image", "A red fox in the snow")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"]["media_type"] == "image/png"
    assert base64.b64decode(body["image"]["data"]) == picture
    assert (body["credits_charged"], body["free_messages_left"]) == (3, 7)
    [request] = fake_providers.requests("openai")
    assert request.path == "/openai/v1/images/generations"
    assert request.body["model"] == "gpt-image-2.6-flare"
    assert request.body["prompt"] == "A red fox in the snow"
    assert await ledger(committing_sessions, telegram_id) == [("grant", 10), ("use", -3)]
    [row] = await message_rows(committing_sessions, telegram_id)
    assert (row.kind, row.credits, row.response_text) == ("image", 3, "[picture]")
    assert row.cost_usd is not None and row.cost_usd > 0


async def test_failed_picture_gives_every_credit_back(api, fake_providers, committing_sessions):
    fake_providers.script("openai", fault="content_policy")
    telegram_id = await new_user(api)
    response = await send(api, telegram_id, "image", "Something forbidden")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "content_refused"
    assert await ledger(committing_sessions, telegram_id) == [
        ("grant", 10),
        ("use", -3),
        ("refund", 3),
    ]
    assert await free_left(api, telegram_id) == 10


async def test_picture_needs_as_many_free_messages_as_it_costs(api, fake_providers):
    telegram_id = await new_user(api)
    for _ in range(8):
        await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Hi"})
    calls = len(fake_providers.requests())
    response = await send(api, telegram_id, "image", "A cat")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "quota_exhausted"
    assert (error["details"]["credits_needed"], error["details"]["free_messages_left"]) == (3, 2)
    assert len(fake_providers.requests()) == calls
    assert await free_left(api, telegram_id) == 2


async def test_pictures_for_vip_only_are_refused_to_free_users(
    settings, catalog, engine, fake_providers
):
    vip_only = provider_settings(settings, fake_providers).model_copy(
        update={"picture_vip_only": True}
    )
    client, registry = await answering_client(vip_only, fast_catalog(catalog), engine)
    try:
        telegram_id = await new_user(client)
        response = await send(client, telegram_id, "image", "A cat")
        assert response.status_code == 402
        assert response.json()["error"]["code"] == "vip_required"
        assert fake_providers.requests() == []
        assert await free_left(client, telegram_id) == 10
    finally:
        await client.aclose()
        await registry.aclose()


async def test_picture_without_an_openai_key_is_unavailable(no_openai_api, fake_providers):
    telegram_id = await new_user(no_openai_api, model="deepseek-standard")
    response = await send(no_openai_api, telegram_id, "image", "A cat")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "image_generation_unavailable"
    assert await free_left(no_openai_api, telegram_id) == 10


async def test_pictures_stay_out_of_the_conversation_history(api, fake_providers):
    telegram_id = await new_user(api)
    await send(api, telegram_id, "image", "A red fox")
    await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Hello"})
    assert answer_requests(fake_providers, "openai")[-1].body["input"] == [
        {"role": "user", "content": "Hello"}
    ]


# --- the shape of a message -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "voice"},  # no attachment
        {"kind": "text", "text": "hi", "attachment": {"data": "AA==", "media_type": "a/b"}},
        {"kind": "image", "text": "  "},
        {"kind": "text", "text": ""},
    ],
)
async def test_malformed_message_shapes_are_validation_errors(api, body):
    telegram_id = await new_user(api)
    response = await api.post("/api/v1/messages", json={"telegram_id": telegram_id, **body})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


# --- modes and the personal instruction ---------------------------------------------------------


async def test_mode_and_instruction_reach_the_provider_in_order_before_the_history(
    api, fake_providers, settings, catalog
):
    telegram_id = await new_user(api)
    await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "First"})
    changed = await api.patch(
        f"/api/v1/users/{telegram_id}",
        json={"mode": "translator", "custom_instructions": "  Address me as Captain.  "},
    )
    assert changed.status_code == 200
    assert changed.json()["mode"] == "translator"
    assert changed.json()["custom_instructions"] == "Address me as Captain."
    await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Second"})
    body = answer_requests(fake_providers, "openai")[-1].body
    translator = catalog.mode("translator").prompt
    assert body["instructions"] == (
        f"{settings.system_prompt}\n\n{translator}\n\n"
        "The user's own instructions for every answer:\nAddress me as Captain."
    )
    assert [turn["content"] for turn in body["input"]][::2] == ["First", "Second"]


async def test_mode_reaches_deepseek_as_the_system_message_first(api, fake_providers, catalog):
    telegram_id = await new_user(api, model="deepseek-standard")
    await api.patch(f"/api/v1/users/{telegram_id}", json={"mode": "coder"})
    await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Sort a list"})
    messages = fake_providers.requests("deepseek")[-1].body["messages"]
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].endswith(catalog.mode("coder").prompt)
    assert messages[1:] == [{"role": "user", "content": "Sort a list"}]


async def test_cleared_instruction_no_longer_reaches_the_provider(api, fake_providers, settings):
    telegram_id = await new_user(api)
    await api.patch(f"/api/v1/users/{telegram_id}", json={"custom_instructions": "Be funny."})
    cleared = await api.patch(f"/api/v1/users/{telegram_id}", json={"custom_instructions": ""})
    assert cleared.json()["custom_instructions"] is None
    await api.post("/api/v1/messages", json={"telegram_id": telegram_id, "text": "Hi"})
    assert answer_requests(fake_providers, "openai")[-1].body["instructions"] == (
        settings.system_prompt
    )


async def test_new_conversation_keeps_mode_and_instruction(api):
    telegram_id = await new_user(api)
    await api.patch(
        f"/api/v1/users/{telegram_id}", json={"mode": "editor", "custom_instructions": "Short."}
    )
    await api.post(f"/api/v1/conversations/{telegram_id}/reset")
    profile = (await api.get(f"/api/v1/users/{telegram_id}")).json()
    assert (profile["mode"], profile["custom_instructions"]) == ("editor", "Short.")


async def test_unknown_mode_and_overlong_instruction_are_refused(api, settings):
    telegram_id = await new_user(api)
    unknown = await api.patch(f"/api/v1/users/{telegram_id}", json={"mode": "pirate"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_mode"
    too_long = "x" * (settings.custom_instructions_max_chars + 1)
    refused = await api.patch(
        f"/api/v1/users/{telegram_id}", json={"custom_instructions": too_long}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "instructions_too_long"
    profile = (await api.get(f"/api/v1/users/{telegram_id}")).json()
    assert (profile["mode"], profile["custom_instructions"]) == ("general", None)


async def test_catalog_lists_modes_features_limits_and_image_models(api, settings):
    catalog = (await api.get("/api/v1/models")).json()
    assert [m["key"] for m in catalog["modes"]][:4] == ["general", "translator", "coder", "editor"]
    assert catalog["modes"][1]["labels"] == {"en": "Translator", "ru": "Переводчик"}
    assert catalog["default_mode"] == "general"
    assert catalog["features"] == {
        "voice": True,
        "image_generation": True,
        "image_credits": settings.picture_credits,
        "image_vip_only": False,
    }
    assert catalog["limits"]["voice_max_seconds"] == settings.voice_max_seconds
    images = {m["key"]: m["images"] for p in catalog["providers"] for m in p["models"]}
    assert images["chatgpt-instant"] is True and images["deepseek-standard"] is False

"""The bot's backend client against the real backend app: the two cannot drift apart."""

import base64

import pytest
from aiogram_i18n import I18nContext

from backend.tests.fixtures import TEST_TOKEN
from bot.handlers.chat import error_sentence
from bot.services.backend import BackendClient, BackendError, BackendUnavailable
from bot.services.schemas import Attachment, DoneEvent, ErrorEvent, StartEvent, TranscriptEvent
from tests.fakes.files import ogg_bytes, pdf_bytes, png_bytes


async def register(env, user_id):
    return await env.backend.register(
        user_id, username="anna", first_name="Anna", last_name=None, language_code="ru"
    )


async def test_register_and_profile_parse(env, user_id):
    created = await register(env, user_id)
    again = await env.backend.profile(user_id)
    assert created.telegram_id == again.telegram_id == user_id
    assert (again.language, again.free_messages_left, again.free_messages_limit) == ("ru", 10, 10)
    assert again.model == "chatgpt-instant" and again.show_reasoning is True


async def test_every_update_field_round_trips(env, user_id):
    await register(env, user_id)
    profile = await env.backend.update_user(user_id, model="perplexity-research")
    assert (profile.provider, profile.model) == ("perplexity", "perplexity-research")
    profile = await env.backend.update_user(user_id, language="en", show_reasoning=False)
    assert (profile.language, profile.show_reasoning) == ("en", False)


async def test_catalog_parses_with_availability(env):
    catalog = await env.backend.models()
    assert [p.key for p in catalog.providers] == ["chatgpt", "perplexity", "deepseek"]
    assert catalog.find("deepseek-thinking") is not None
    assert all(p.available for p in catalog.providers)


async def test_streamed_answer_parses_into_bot_events(env, user_id):
    await register(env, user_id)
    env.fake.script("openai", text="Hello from the contract.", chunks=2)
    events = [e async for e in env.backend.ask(user_id, "hi", "c:1")]
    assert isinstance(events[0], StartEvent)
    assert isinstance(events[-1], DoneEvent)
    assert events[-1].text == "Hello from the contract."
    await env.backend.reset_conversation(user_id)


async def test_failed_answer_parses_as_error_event(env, user_id):
    await register(env, user_id)
    env.fake.script("openai", fault="http_500")
    events = [e async for e in env.backend.ask(user_id, "hi")]
    assert isinstance(events[-1], ErrorEvent)
    assert (events[-1].code, events[-1].refunded) == ("provider_unavailable", True)


async def test_backend_error_codes_reach_the_bot(env, user_id):
    with pytest.raises(BackendError) as missing:
        await env.backend.profile(user_id)
    assert (missing.value.code, missing.value.status) == ("user_not_found", 404)
    await register(env, user_id)
    with pytest.raises(BackendError) as unknown:
        await env.backend.update_user(user_id, model="gpt-1")
    assert unknown.value.code == "unknown_model"


async def test_wrong_token_is_refused(env):
    transport = env.backend._http._transport
    client = BackendClient("http://backend.test", TEST_TOKEN + "x", transport=transport)
    with pytest.raises(BackendError) as refused:
        await client.models()
    assert refused.value.code == "unauthorized"


async def test_unreachable_backend_is_unavailable_within_seconds():
    client = BackendClient("http://127.0.0.1:9", "token")
    with pytest.raises(BackendUnavailable):
        await client.models()
    await client.aclose()


# --- beyond text: voice, photos, documents, pictures, modes --------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sentence(env, code: str, details: dict) -> str:
    """The bot's sentence for a backend error, as the user would read it (English)."""
    middleware = env.dp["i18n_middleware"]
    i18n = I18nContext(locale="en", core=middleware.core, manager=middleware.manager, data={})
    text = error_sentence(code, i18n, **details)
    assert text != i18n.get("error-generic"), (code, details)
    return text


async def test_catalog_carries_modes_features_and_limits(env):
    catalog = await env.backend.models()
    assert catalog.default_mode in [m.key for m in catalog.modes]
    general = catalog.mode(catalog.default_mode)
    assert general is not None and general.label("ru") and general.label("en")
    assert general.describe("ru") and general.describe("en")
    assert catalog.features.voice and catalog.features.image_generation
    assert catalog.features.image_credits >= 1
    limits = catalog.limits
    assert {"pdf", "txt", "md"} <= set(limits.document_types)
    assert "image/jpeg" in limits.image_types
    assert 0 < limits.voice_max_bytes <= 20 * 1024 * 1024
    assert limits.custom_instructions_max_chars > 0
    images = {model.key for _, model in catalog.image_models()}
    assert "chatgpt-instant" in images and "deepseek-standard" not in images


async def test_mode_and_instruction_round_trip(env, user_id):
    profile = await register(env, user_id)
    assert (profile.mode, profile.custom_instructions) == ("general", None)
    profile = await env.backend.update_user(
        user_id, mode="translator", custom_instructions="Be brief."
    )
    assert (profile.mode, profile.custom_instructions) == ("translator", "Be brief.")
    profile = await env.backend.update_user(user_id, custom_instructions="")
    assert profile.custom_instructions is None and profile.mode == "translator"


async def test_mode_and_instruction_refusals_reach_the_bot(env, user_id):
    await register(env, user_id)
    with pytest.raises(BackendError) as unknown:
        await env.backend.update_user(user_id, mode="pirate")
    assert unknown.value.code == "unknown_mode"
    limit = (await env.backend.models()).limits.custom_instructions_max_chars
    with pytest.raises(BackendError) as too_long:
        await env.backend.update_user(user_id, custom_instructions="x" * (limit + 1))
    assert too_long.value.code == "instructions_too_long"
    assert str(limit) in sentence(env, "instructions_too_long", too_long.value.details).replace(
        ",", ""
    )


async def test_voice_streams_a_transcript_event_then_the_answer(env, user_id):
    await register(env, user_id)
    env.fake.script("openai", transcript="Is it raining?", text="No.")
    voice = Attachment(data=b64(ogg_bytes(2000)), media_type="audio/ogg", duration_s=2)
    events = [e async for e in env.backend.ask(user_id, "", "c:v", kind="voice", attachment=voice)]
    assert [type(e) for e in events[:2]] == [StartEvent, TranscriptEvent]
    assert events[1].text == "Is it raining?"
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert (done.kind, done.transcript, done.credits_charged) == ("voice", "Is it raining?", 1)
    assert done.image is None


async def test_document_events_say_whether_it_was_cut(env, user_id):
    await register(env, user_id)
    pdf = Attachment(
        data=b64(pdf_bytes(["Hello."])), media_type="application/pdf", filename="a.pdf"
    )
    events = [e async for e in env.backend.ask(user_id, "?", kind="document", attachment=pdf)]
    assert isinstance(events[0], StartEvent) and events[0].document_truncated is False
    assert isinstance(events[-1], DoneEvent) and events[-1].document_truncated is False


async def test_picture_arrives_inline_with_its_cost(env, user_id):
    await register(env, user_id)
    picture = png_bytes(3, 3)
    env.fake.script("openai", image_png=picture)
    events = [e async for e in env.backend.ask(user_id, "a cat", "c:i", kind="image")]
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.image is not None
    assert base64.b64decode(done.image.data) == picture
    assert done.image.media_type == "image/png"
    catalog = await env.backend.models()
    assert done.credits_charged == catalog.features.image_credits


async def test_images_not_supported_names_the_models_that_see(env, user_id):
    await register(env, user_id)
    await env.backend.update_user(user_id, model="deepseek-standard")
    photo = Attachment(data=b64(png_bytes(2, 2)), media_type="image/png")
    with pytest.raises(BackendError) as refused:
        [e async for e in env.backend.ask(user_id, "", kind="photo", attachment=photo)]
    assert refused.value.code == "images_not_supported"
    assert refused.value.details["model"] == "deepseek-standard"
    assert "chatgpt-instant" in refused.value.details["image_models"]


async def test_attachment_refusals_have_the_details_the_bot_shows(env, user_id):
    await register(env, user_id)
    limits = (await env.backend.models()).limits
    big = Attachment(data=b64(bytes(limits.image_max_bytes + 1)), media_type="image/jpeg")
    with pytest.raises(BackendError) as too_large:
        [e async for e in env.backend.ask(user_id, "", kind="photo", attachment=big)]
    assert too_large.value.code == "attachment_too_large"
    assert "MB" in sentence(env, too_large.value.code, too_large.value.details)

    long_voice = Attachment(
        data=b64(ogg_bytes(100)), media_type="audio/ogg", duration_s=limits.voice_max_seconds + 1
    )
    with pytest.raises(BackendError) as too_long:
        [e async for e in env.backend.ask(user_id, "", kind="voice", attachment=long_voice)]
    assert too_long.value.code == "audio_too_long"
    assert str(limits.voice_max_seconds) in sentence(env, "audio_too_long", too_long.value.details)

    sheet = Attachment(data=b64(b"PK"), media_type="application/zip", filename="t.xlsx")
    with pytest.raises(BackendError) as unsupported:
        [e async for e in env.backend.ask(user_id, "", kind="document", attachment=sheet)]
    assert unsupported.value.code == "unsupported_document"
    sentence(env, "unsupported_document", unsupported.value.details)


async def test_picture_beyond_the_allowance_says_what_it_costs(env, user_id):
    await register(env, user_id)
    for number in range(9):
        [e async for e in env.backend.ask(user_id, f"q{number}")]
    with pytest.raises(BackendError) as refused:
        [e async for e in env.backend.ask(user_id, "a cat", kind="image")]
    assert refused.value.code == "quota_exhausted"
    catalog = await env.backend.models()
    assert refused.value.details["credits_needed"] == catalog.features.image_credits

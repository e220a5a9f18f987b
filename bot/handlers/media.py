"""Voice, audio, round videos, photos, documents and /image.

The bot checks what it can before downloading (the limits come from the backend's catalog),
downloads through getFile and the Bot API file URL, and hands the file to the one answer path
in bot/handlers/chat.py. The backend still decides and checks everything again.
"""

import base64
import io
import re
from dataclasses import dataclass

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message, ReplyParameters
from aiogram_i18n import I18nContext

from bot.config import BotSettings
from bot.handlers.chat import Question, answer, megabytes
from bot.handlers.common import choose, edit_or_answer, unavailable
from bot.keyboards.menus import MenuCB, SwitchModelCB, back_home, switch_model_menu
from bot.middlewares.auth import ProfileCache
from bot.services.backend import BackendClient, BackendError
from bot.services.schemas import Attachment, Catalog, Limits, Profile
from bot.utils.catalog import CatalogCache
from bot.utils.logging import get_logger

log = get_logger("bot.media")

# Bots can download files of up to 20 MB through the Bot API.
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Media:
    """A file in a message, as Telegram described it (before downloading)."""

    file_id: str
    size: int | None
    media_type: str
    filename: str | None = None
    duration_s: int | None = None


async def download(bot: Bot, media: Media) -> bytes | None:
    """The file's bytes through getFile and the file URL; None if Telegram will not serve it."""
    buffer = io.BytesIO()
    try:
        await bot.download(media.file_id, destination=buffer)
    except TelegramBadRequest as exc:
        if "too big" not in str(exc).lower():
            raise
        log.info("file_too_big", size=media.size)
        return None
    return buffer.getvalue()


# What picture files start with: the bytes say their type better than a name does.
IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def picture_type(data: bytes) -> str | None:
    """The media type of a JPEG, PNG, GIF or WebP file from its first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in IMAGE_SIGNATURES if data.startswith(magic)), None)


MEDIA_TYPE = re.compile(r"[\w.+-]{1,63}/[\w.+-]{1,63}", re.ASCII)


def attachment(media: Media, data: bytes, *, picture: bool = False) -> Attachment:
    media_type = (picture and picture_type(data)) or media.media_type
    media_type = media_type.split(";", 1)[0].strip().lower()
    return Attachment(
        data=base64.b64encode(data).decode("ascii"),
        # What the sender's app claimed can be anything; the backend looks at the bytes too.
        media_type=media_type if MEDIA_TYPE.fullmatch(media_type) else "application/octet-stream",
        filename=media.filename,
        duration_s=media.duration_s,
    )


def too_large(media: Media, limit: int, i18n: I18nContext) -> str | None:
    """The sentence for a file beyond the limit (or Telegram's 20 MB), else None."""
    limit = min(limit, TELEGRAM_DOWNLOAD_LIMIT)
    if media.size is None or media.size <= limit:
        return None
    return i18n.get("file-too-large", size_mb=megabytes(media.size), limit_mb=megabytes(limit))


def clock(seconds: int) -> str:
    """125 -> "2:05"."""
    return f"{seconds // 60}:{seconds % 60:02d}"


def extension(filename: str | None) -> str:
    """ "Report.PDF" -> "pdf"; "" when there is none."""
    name = (filename or "").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name.strip(".") else ""


# --- voice, audio files, round videos ---------------------------------------------------------


def sound_of(message: Message) -> Media | None:
    if message.voice is not None:
        voice = message.voice
        return Media(
            voice.file_id,
            voice.file_size,
            voice.mime_type or "audio/ogg",
            "voice.ogg",
            voice.duration,
        )
    if message.audio is not None:
        audio = message.audio
        media_type = audio.mime_type or "audio/mpeg"
        filename = audio.file_name or f"audio.{media_type.rsplit('/', 1)[-1]}"
        return Media(audio.file_id, audio.file_size, media_type, filename, audio.duration)
    if message.video_note is not None:
        note = message.video_note
        return Media(note.file_id, note.file_size, "video/mp4", "video_note.mp4", note.duration)
    return None


async def voice_message(
    message: Message,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    """A voice note, audio file or round video: transcribed, shown, answered as if typed."""
    media = sound_of(message)
    assert media is not None
    if profile is None:
        await unavailable(message, i18n)
        return
    catalog = await catalogs.get()
    limits = catalog.limits
    refusal = None
    if not catalog.features.voice:
        refusal = i18n.get("voice-unavailable")
    elif media.duration_s is not None and media.duration_s > limits.voice_max_seconds:
        refusal = i18n.get(
            "voice-too-long",
            limit=clock(limits.voice_max_seconds),
            duration=clock(media.duration_s),
        )
    else:
        refusal = too_large(media, limits.voice_max_bytes, i18n)
    if refusal is not None:
        await message.answer(refusal)
        return
    data = await download(bot, media)
    if not data:
        await message.answer(too_large_anyway(i18n) if data is None else empty_file(i18n))
        return
    question = Question(message.caption or "", "voice", attachment(media, data))
    await answer(message, question, bot, profile, backend, profiles, settings, i18n)


def empty_file(i18n: I18nContext) -> str:
    """Telegram served no bytes: there is nothing to read or hear."""
    return i18n.get("error-invalid_attachment")


def too_large_anyway(i18n: I18nContext) -> str:
    """Telegram refused to serve the file (it did not say its size in the message)."""
    limit = megabytes(TELEGRAM_DOWNLOAD_LIMIT)
    return i18n.get("file-too-large-telegram", limit_mb=limit)


# --- photos and pictures sent as files --------------------------------------------------------


def picture_of(message: Message, limits: Limits) -> Media | None:
    """The photo to look at: the largest size within the limit (or the image document)."""
    if message.photo:
        fitting = [p for p in message.photo if (p.file_size or 0) <= limits.image_max_bytes]
        best = max(fitting or message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Media(best.file_id, best.file_size, "image/jpeg", None)
    document = message.document
    if document is not None and is_image(document.mime_type, limits):
        return Media(
            document.file_id, document.file_size, document.mime_type or "", document.file_name
        )
    return None


def is_image(media_type: str | None, limits: Limits) -> bool:
    return media_type is not None and media_type.lower() in limits.image_types


def sees_pictures(catalog: Catalog, model_key: str) -> bool:
    found = catalog.find(model_key)
    return found is not None and found[1].images


async def photo_message(
    message: Message,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    """A photo (or a picture sent as a file): the caption is the question."""
    if profile is None:
        await unavailable(message, i18n)
        return
    await answer_picture(message, bot, profile, backend, profiles, settings, catalogs, i18n)


async def answer_picture(
    message: Message,
    bot: Bot,
    profile: Profile,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    catalog = await catalogs.get()
    media = picture_of(message, catalog.limits)
    assert media is not None
    if not sees_pictures(catalog, profile.model):
        await offer_picture_models(message, profile.model, catalog, i18n)
        return
    refusal = too_large(media, catalog.limits.image_max_bytes, i18n)
    if refusal is not None:
        await message.answer(refusal)
        return
    data = await download(bot, media)
    if not data:
        await message.answer(too_large_anyway(i18n) if data is None else empty_file(i18n))
        return
    question = Question(message.caption or "", "photo", attachment(media, data, picture=True))
    try:
        await answer(message, question, bot, profile, backend, profiles, settings, i18n)
    except BackendError as exc:
        if exc.code != "images_not_supported":
            raise
        # The catalog or the user's model changed since they were cached (another replica,
        # a redeploy): the backend's model and list are the current ones.
        keys = exc.details.get("image_models")
        current = exc.details.get("model")
        await offer_picture_models(
            message,
            current if isinstance(current, str) else profile.model,
            catalog,
            i18n,
            keys if isinstance(keys, list) else None,
        )


async def offer_picture_models(
    message: Message,
    model_key: str,
    catalog: Catalog,
    i18n: I18nContext,
    keys: list[str] | None = None,
) -> None:
    """In reply to the photo: this model does not see pictures; one tap switches and answers."""
    models = [
        (provider, model)
        for provider, model in catalog.image_models()
        if keys is None or model.key in keys
    ]
    found = catalog.find(model_key)
    current = f"{found[0].label} · {found[1].label}" if found else model_key
    reply = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    if not models:
        await message.answer(i18n.get("photo-no-models", model=current), reply_parameters=reply)
        return
    await message.answer(
        i18n.get("photo-model-blind", model=current),
        reply_parameters=reply,
        reply_markup=switch_model_menu(models, i18n),
    )


async def switch_and_answer(
    query: CallbackQuery,
    callback_data: SwitchModelCB,
    bot: Bot,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    """Switch to the model tapped, then answer the photo the offer replied to.

    The photo comes with the button press (the offer's reply_to_message), so any replica can
    answer it without remembering anything.
    """
    catalog = await catalogs.get()
    found = catalog.find(callback_data.model)
    if found is None or not found[1].images:
        await query.answer(i18n.get("button-outdated"), show_alert=True)
        return
    provider, model = found
    if not (provider.available and model.available):
        await query.answer(i18n.get("model-unavailable", provider=provider.label), show_alert=True)
        return
    offer = query.message if isinstance(query.message, Message) else None
    photo = offer.reply_to_message if offer is not None else None
    if photo is not None and picture_of(photo, catalog.limits) is None:
        photo = None
    if photo is not None and (photo.from_user is None or photo.from_user.id != query.from_user.id):
        await query.answer(i18n.get("photo-not-yours"), show_alert=True)
        return
    profile = await choose(query, backend, profiles, i18n, "unknown_model", model=model.key)
    if profile is None:
        return
    text = i18n.get("model-chosen", provider=provider.label, model=model.label)
    if photo is None:
        text += "\n" + i18n.get("photo-send-again")
    await edit_or_answer(query, text, None)
    if photo is not None:
        await answer_picture(photo, bot, profile, backend, profiles, settings, catalogs, i18n)


# --- documents --------------------------------------------------------------------------------


async def document_message(
    message: Message,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    """A PDF, text or source file: read, then the caption is the question about it."""
    document = message.document
    assert document is not None
    if profile is None:
        await unavailable(message, i18n)
        return
    catalog = await catalogs.get()
    limits = catalog.limits
    if is_image(document.mime_type, limits):
        await answer_picture(message, bot, profile, backend, profiles, settings, catalogs, i18n)
        return
    if extension(document.file_name) not in limits.document_types:
        await message.answer(
            i18n.get("document-unsupported", supported=document_types(limits.document_types, i18n))
        )
        return
    media = Media(
        document.file_id,
        document.file_size,
        document.mime_type or "application/octet-stream",
        document.file_name,
    )
    refusal = too_large(media, limits.document_max_bytes, i18n)
    if refusal is not None:
        await message.answer(refusal)
        return
    data = await download(bot, media)
    if not data:
        await message.answer(too_large_anyway(i18n) if data is None else empty_file(i18n))
        return
    question = Question(message.caption or "", "document", attachment(media, data))
    await answer(message, question, bot, profile, backend, profiles, settings, i18n)


MAIN_DOCUMENT_TYPES = ("pdf", "txt", "md")
EXAMPLE_TYPES = ("py", "js", "ts", "json", "csv", "html")
LISTED_TYPES = 8  # beyond this many, the list is summarised


def document_types(extensions: list[str], i18n: I18nContext) -> str:
    """["pdf", "txt"] -> ".pdf, .txt"; a long list -> ".pdf, .txt, .md and code or data files
    (.py, .js, …)"."""
    if len(extensions) <= LISTED_TYPES:
        return ", ".join(f".{ext}" for ext in extensions)
    main = [ext for ext in MAIN_DOCUMENT_TYPES if ext in extensions]
    rest = [ext for ext in extensions if ext not in main]
    examples = [ext for ext in EXAMPLE_TYPES if ext in rest] or rest[:4]
    return i18n.get(
        "document-types-more",
        main=", ".join(f".{ext}" for ext in main),
        examples=", ".join(f".{ext}" for ext in examples),
    )


# --- /image -----------------------------------------------------------------------------------


async def image_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    profile: Profile | None,
    backend: BackendClient,
    profiles: ProfileCache,
    settings: BotSettings,
    catalogs: CatalogCache,
    i18n: I18nContext,
) -> None:
    """/image <description>: a picture drawn and sent as a photo."""
    if profile is None:
        await unavailable(message, i18n)
        return
    description = (command.args or "").strip()
    if not description:
        await message.answer(await picture_hint(catalogs, i18n))
        return
    question = Question(description, "image")
    await answer(message, question, bot, profile, backend, profiles, settings, i18n)


async def picture_button(query: CallbackQuery, catalogs: CatalogCache, i18n: I18nContext) -> None:
    await edit_or_answer(query, await picture_hint(catalogs, i18n), back_home(i18n))


async def picture_hint(catalogs: CatalogCache, i18n: I18nContext) -> str:
    """How to ask for a picture, and what one costs."""
    features = (await catalogs.get()).features
    if not features.image_generation:
        return i18n.get("error-image_generation_unavailable")
    if features.image_vip_only:
        cost = i18n.get("picture-hint-vip-only")
    else:
        cost = i18n.get("picture-hint-cost", credits=features.image_credits)
    return i18n.get("picture-hint") + "\n" + cost


def create_router() -> Router:
    """The media handlers on a fresh router (one per dispatcher)."""
    router = Router(name="media")
    router.message.register(voice_message, F.voice | F.audio | F.video_note)
    router.message.register(photo_message, F.photo)
    # A GIF sent as an animation also carries a `document`: it is not a document to read.
    router.message.register(document_message, F.document & ~F.animation)
    router.message.register(image_command, Command("image"))
    router.callback_query.register(picture_button, MenuCB.filter(F.action == "image"))
    router.callback_query.register(switch_and_answer, SwitchModelCB.filter())
    return router

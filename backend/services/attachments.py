"""What a message brings besides its text: checked against the limits before anything is charged."""

import asyncio
import base64
import binascii
from dataclasses import dataclass

from backend.config import Settings
from backend.models.enums import MessageKind
from backend.models.schemas import AttachmentIn, MessageIn
from backend.services.documents import Document, read_document
from backend.utils.exceptions import AttachmentTooLarge, AudioTooLong, InvalidAttachment

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")

# What the model is asked when a photo has no caption or a document no question.
DEFAULT_PROMPTS = {
    MessageKind.PHOTO: {
        "en": "Describe this picture.",
        "ru": "Опиши, что на этом изображении.",
    },
    MessageKind.DOCUMENT: {
        "en": "Summarise this document and its main points.",
        "ru": "Кратко перескажи этот документ и его главные мысли.",
    },
}


@dataclass(frozen=True, slots=True)
class Audio:
    data: bytes
    filename: str
    media_type: str
    duration_s: int | None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message ready to be answered: the question and what comes with it."""

    kind: MessageKind
    text: str  # the user's own words (caption, question, description); "" when none
    images: tuple[str, ...] = ()  # data URLs
    audio: Audio | None = None
    document: Document | None = None

    def question(self, language: str) -> str:
        """What the model is asked: the user's words, or a default for a bare photo/document."""
        if self.text.strip():
            return self.text
        prompts = DEFAULT_PROMPTS.get(self.kind)
        return prompts.get(language, prompts["en"]) if prompts else self.text

    def stored_text(self) -> str:
        """The question as history keeps it: attachments become short placeholders."""
        if self.kind == MessageKind.PHOTO:
            return f"[photo] {self.text}".rstrip()
        if self.kind == MessageKind.DOCUMENT and self.document is not None:
            return f"[document: {self.document.name}] {self.text}".rstrip()
        if self.kind == MessageKind.VOICE:
            return "[voice]"
        return self.text


def _decode(attachment: AttachmentIn) -> bytes:
    try:
        return base64.b64decode(attachment.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAttachment("The attachment is not valid base64.") from None


def _check_size(data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise AttachmentTooLarge(
            f"The file is {len(data)} bytes; the limit is {limit}.",
            limit_bytes=limit,
            size_bytes=len(data),
        )


async def read_incoming(body: MessageIn, settings: Settings) -> Incoming:
    """The message's attachment decoded and within the limits, or the refusal that says why."""
    attachment = body.attachment
    if body.kind in (MessageKind.TEXT, MessageKind.IMAGE) or attachment is None:
        return Incoming(kind=body.kind, text=body.text)
    if body.kind == MessageKind.VOICE:
        duration = attachment.duration_s
        if duration is not None and duration > settings.voice_max_seconds:
            raise AudioTooLong(
                f"The recording is {duration} s long; the limit is {settings.voice_max_seconds} s.",
                limit_s=settings.voice_max_seconds,
                duration_s=duration,
            )
        data = _decode(attachment)
        _check_size(data, settings.voice_max_bytes)
        filename = attachment.filename or "voice.ogg"
        audio = Audio(data, filename, attachment.media_type, duration)
        return Incoming(kind=body.kind, text="", audio=audio)
    if body.kind == MessageKind.PHOTO:
        if attachment.media_type not in IMAGE_TYPES:
            raise InvalidAttachment(
                f"Photos must be one of {', '.join(IMAGE_TYPES)}.", supported=list(IMAGE_TYPES)
            )
        _check_size(_decode(attachment), settings.photo_max_bytes)
        url = f"data:{attachment.media_type};base64,{attachment.data}"
        return Incoming(kind=body.kind, text=body.text, images=(url,))
    data = _decode(attachment)
    _check_size(data, settings.document_max_bytes)
    document = await asyncio.to_thread(
        read_document,
        data,
        attachment.filename,
        attachment.media_type,
        settings.document_max_pages,
    )
    return Incoming(kind=body.kind, text=body.text, document=document)

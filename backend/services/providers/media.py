"""Speech to text and pictures on request, both through the OpenAI SDK."""

import base64
import binascii
from dataclasses import dataclass

import openai

from backend.services.catalog import ImageGenerationEntry, TranscriptionEntry
from backend.services.providers.base import ProviderError, Usage
from backend.services.providers.client import as_int, read_field, request_id_headers
from backend.services.providers.errors import Deadline

IMAGE_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    duration_s: float | None  # as the provider billed it, when it says


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    media_type: str
    revised_prompt: str | None
    usage: Usage | None


class Transcriber:
    """`audio.transcriptions.create` with the catalog's model, under its deadline."""

    def __init__(self, client: openai.AsyncOpenAI, entry: TranscriptionEntry) -> None:
        self._client = client
        self.entry = entry

    async def transcribe(self, data: bytes, filename: str, media_type: str) -> Transcript:
        """The words of a recording; a ProviderError when there are none or the call fails."""
        deadline = Deadline(self.entry.timeout_s)
        result = await deadline.run(
            self._client.audio.transcriptions.create(
                model=self.entry.api_model,
                file=(filename, data, media_type),
                extra_headers=request_id_headers(),
            )
        )
        text = read_field(result, "text")
        if not isinstance(text, str) or not text.strip():
            raise ProviderError(
                "Nothing could be heard in the recording.", reason="empty_transcript"
            )
        seconds = read_field(read_field(result, "usage"), "seconds")
        duration = float(seconds) if isinstance(seconds, int | float) else None
        return Transcript(text=text.strip(), duration_s=duration)


class ImageGenerator:
    """`images.generate` with the catalog's model, size and quality, one picture per call."""

    def __init__(self, client: openai.AsyncOpenAI, entry: ImageGenerationEntry) -> None:
        self._client = client
        self.entry = entry

    async def generate(self, prompt: str) -> GeneratedImage:
        """One picture for the description; a ProviderError when none comes back."""
        deadline = Deadline(self.entry.timeout_s)
        result = await deadline.run(
            self._client.images.generate(
                model=self.entry.api_model,
                prompt=prompt,
                size=self.entry.size,
                quality=self.entry.quality,
                n=1,
                extra_headers=request_id_headers(),
            )
        )
        images = read_field(result, "data") or []
        encoded = read_field(images[0], "b64_json") if images else None
        if not isinstance(encoded, str) or not encoded:
            raise ProviderError("The picture did not come back.", reason="no_image")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderError("The picture came back damaged.", reason="bad_image") from exc
        output_format = read_field(result, "output_format")
        revised = read_field(images[0], "revised_prompt")
        usage = read_field(result, "usage")
        return GeneratedImage(
            data=data,
            media_type=IMAGE_MEDIA_TYPES.get(str(output_format), "image/png"),
            revised_prompt=revised if isinstance(revised, str) and revised else None,
            usage=Usage(
                input_tokens=as_int(read_field(usage, "input_tokens")),
                output_tokens=as_int(read_field(usage, "output_tokens")),
            )
            if usage is not None
            else None,
        )

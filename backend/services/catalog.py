"""The model catalog: which providers and models the menu offers, read from a TOML file."""

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parent.parent / "catalog.toml"
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"


class CatalogError(ValueError):
    """The catalog file is missing or does not describe a usable menu."""


class ProviderEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(min_length=1, max_length=40)
    api_style: Literal["openai_responses", "perplexity_agent", "chat_completions"]
    credentials: Literal["openai", "perplexity", "deepseek"]


class ModelEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    provider: str = Field(pattern=KEY_PATTERN)
    label: str = Field(min_length=1, max_length=40)
    api_model: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    reasoning: bool = False  # the model can show its reasoning
    images: bool = False  # the model accepts image input (photos)
    long_running: bool = False  # answers may take minutes (deep research)
    price_input_per_1m: Decimal | None = Field(default=None, ge=0)
    price_cached_input_per_1m: Decimal | None = Field(default=None, ge=0)
    price_output_per_1m: Decimal | None = Field(default=None, ge=0)
    history_budget_tokens: int = Field(default=16_000, ge=0, le=1_000_000)
    max_output_tokens: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=120.0, gt=0, le=3600)


class TranscriptionEntry(BaseModel):
    """Speech to text for voice notes (OpenAI `audio.transcriptions`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(pattern=KEY_PATTERN)  # whose credentials and base URL to use
    api_model: str = Field(min_length=1)
    price_per_minute: Decimal | None = Field(default=None, ge=0)
    timeout_s: float = Field(default=120.0, gt=0, le=3600)


class ImageGenerationEntry(BaseModel):
    """Pictures on request (OpenAI Images API)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(pattern=KEY_PATTERN)
    api_model: str = Field(min_length=1)
    size: str = Field(default="1024x1024", pattern=r"^(auto|\d{3,4}x\d{3,4})$")
    quality: Literal["low", "medium", "high", "xhigh", "max", "auto"] = "auto"
    price_input_per_1m: Decimal | None = Field(default=None, ge=0)
    price_output_per_1m: Decimal | None = Field(default=None, ge=0)
    timeout_s: float = Field(default=180.0, gt=0, le=3600)


class ModeEntry(BaseModel):
    """A chat mode: a system prompt with a label in each language."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    label_en: str = Field(min_length=1, max_length=40)
    label_ru: str = Field(min_length=1, max_length=40)
    description_en: str = Field(default="", max_length=200)
    description_ru: str = Field(default="", max_length=200)
    prompt: str = Field(default="", max_length=8000)


class Catalog(BaseModel):
    """Providers and their models; every model's provider exists, keys are unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_model: str
    providers: dict[str, ProviderEntry]
    models: list[ModelEntry] = Field(min_length=1)
    default_mode: str = "general"
    modes: list[ModeEntry] = Field(
        default_factory=lambda: [
            ModeEntry(key="general", label_en="General assistant", label_ru="Помощник")
        ],
        min_length=1,
    )
    transcription: TranscriptionEntry | None = None
    image_generation: ImageGenerationEntry | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Catalog":
        keys = [m.key for m in self.models]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate model keys: {', '.join(duplicates)}")
        for model in self.models:
            if model.provider not in self.providers:
                raise ValueError(f"model {model.key!r} names unknown provider {model.provider!r}")
        empty = sorted(set(self.providers) - {m.provider for m in self.models})
        if empty:
            raise ValueError(f"providers without models: {', '.join(empty)}")
        if self.default_model not in keys:
            raise ValueError(f"default_model {self.default_model!r} is not a model key")
        mode_keys = [m.key for m in self.modes]
        if len(set(mode_keys)) != len(mode_keys):
            raise ValueError("duplicate mode keys")
        if self.default_mode not in mode_keys:
            raise ValueError(f"default_mode {self.default_mode!r} is not a mode key")
        for name, extra in (
            ("transcription", self.transcription),
            ("image_generation", self.image_generation),
        ):
            if extra is None:
                continue
            provider = self.providers.get(extra.provider)
            if provider is None or provider.credentials != "openai":
                raise ValueError(f"{name} must name a provider with OpenAI credentials")
        return self

    def get(self, key: str) -> ModelEntry | None:
        """The model with this key, if the catalog has it."""
        return next((m for m in self.models if m.key == key), None)

    def mode(self, key: str) -> ModeEntry | None:
        """The chat mode with this key, if the catalog has it."""
        return next((m for m in self.modes if m.key == key), None)

    @property
    def default(self) -> ModelEntry:
        entry = self.get(self.default_model)
        assert entry is not None  # guaranteed by validation
        return entry


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog; any problem is one `CatalogError` naming the file."""
    source = path or DEFAULT_CATALOG_PATH
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
        return Catalog.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogError(f"model catalog {source}: {exc}") from exc

"""What every provider adapter takes and yields, and the errors it may raise."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol

from backend.utils.exceptions import DomainError

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation; `images` are data URLs sent with it (photos)."""

    role: Role
    content: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """Everything an adapter needs for one answer.

    `turns` is the trimmed history followed by the user's new message (the last turn, role
    "user"). `options` are the catalog entry's call options (reasoning effort, thinking,
    Perplexity effort preset, background mode...).
    """

    api_model: str
    instructions: str
    turns: list[Turn]
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = True
    max_output_tokens: int | None = None
    timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    type: Literal["delta"] = "delta"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    type: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class Source:
    title: str
    url: str
    date: str | None = None
    snippet: str | None = None


@dataclass(frozen=True, slots=True)
class Sources:
    items: list[Source]
    type: Literal["sources"] = "sources"


@dataclass(frozen=True, slots=True)
class Progress:
    """A long run is still going (deep research): `stage` is e.g. "queued", "searching"."""

    stage: str
    type: Literal["progress"] = "progress"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None  # set when the provider reports its own cost
    type: Literal["usage"] = "usage"


ProviderEvent = TextDelta | ReasoningDelta | Sources | Progress | Usage


class ProviderAdapter(Protocol):
    """An API style: `answer` yields events until the answer is complete, or raises."""

    def answer(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]: ...

    async def aclose(self) -> None: ...


class ProviderError(DomainError):
    """The provider did not produce an answer. The user is refunded."""

    code: ClassVar[str] = "provider_error"
    status_code: ClassVar[int] = 502
    default_message: ClassVar[str] = "The AI provider returned an unusable answer."


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    status_code = 504
    default_message = "The AI provider took too long to answer."


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    status_code = 503
    default_message = "The AI provider is rate-limiting requests right now."


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status_code = 503
    default_message = "The AI provider is unavailable right now."


class ContentRefused(ProviderError):
    code = "content_refused"
    status_code = 422
    default_message = "The AI provider refused to answer this request."


class ContextTooLong(ProviderError):
    code = "context_too_long"
    status_code = 422
    default_message = "The conversation is too long for this model."


class ProviderNotConfigured(ProviderError):
    code = "provider_not_configured"
    status_code = 503
    default_message = "This AI provider is not configured on the server."

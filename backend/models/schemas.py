"""Request and response bodies of the backend API (the bot's client mirrors these)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from backend.models.enums import CreditKind, Language

MAX_BIGINT = 2**63 - 1


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
TelegramId = Annotated[int, Field(gt=0, le=MAX_BIGINT, description="Telegram user id")]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class ErrorDetail(ApiModel):
    code: str
    message: str
    details: Any | None = None


class ErrorBody(ApiModel):
    error: ErrorDetail


class TelegramProfile(ApiModel):
    """What the bot knows of a Telegram user; sent on first contact and to refresh."""

    telegram_id: TelegramId
    username: Annotated[SafeStr, Field(max_length=64)] | None = None
    first_name: Annotated[SafeStr, Field(max_length=256)] | None = None
    last_name: Annotated[SafeStr, Field(max_length=256)] | None = None
    language_code: Annotated[SafeStr, Field(max_length=35)] | None = None


class UserUpdate(ApiModel):
    """Fields a user may change; at least one must be given."""

    provider: Annotated[SafeStr, Field(min_length=1, max_length=32)] | None = None
    model: Annotated[SafeStr, Field(min_length=1, max_length=64)] | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> "UserUpdate":
        if self.provider is None and self.model is None and self.language is None:
            raise ValueError("give at least one of provider, model, language")
        return self


class UserProfile(ApiModel):
    telegram_id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    language_code: str | None
    language: Language
    is_vip: bool
    vip_expires_at: datetime | None
    free_messages_left: int
    free_messages_limit: int
    provider: str
    model: str
    created_at: datetime


class LedgerEntry(ApiModel):
    id: int
    kind: CreditKind
    delta: int
    balance_after: int
    message_id: int | None
    reason: str | None
    created_at: datetime


class CreditsOut(ApiModel):
    telegram_id: int
    is_vip: bool
    vip_expires_at: datetime | None
    free_messages_left: int
    free_messages_limit: int
    entries: list[LedgerEntry]


class TrialOut(ApiModel):
    telegram_id: int
    messages_limit: int
    messages_left: int
    messages_used: int
    exhausted: bool
    is_vip: bool


class HealthOut(ApiModel):
    status: str
    database: str

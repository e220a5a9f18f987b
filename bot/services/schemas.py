"""The backend's API bodies as the bot reads them (kept in step by the contract test)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Model(BaseModel):
    # Unknown fields are ignored, so the backend can add fields before the bot knows them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Profile(Model):
    telegram_id: int
    username: str | None
    first_name: str | None
    language: Literal["ru", "en"]
    is_vip: bool
    vip_expires_at: datetime | None
    free_messages_left: int
    free_messages_limit: int
    provider: str
    model: str
    show_reasoning: bool
    mode: str
    custom_instructions: str | None
    created_at: datetime
    blocked: bool = False  # suspended by an operator


class CatalogModel(Model):
    key: str
    label: str
    available: bool
    reasoning: bool
    long_running: bool
    images: bool  # accepts image input


class CatalogProvider(Model):
    key: str
    label: str
    available: bool
    models: list[CatalogModel]


class ChatMode(Model):
    key: str
    labels: dict[str, str]
    descriptions: dict[str, str]

    def label(self, language: str) -> str:
        """The label in the user's language (English, else the key, when missing)."""
        return self.labels.get(language) or self.labels.get("en") or self.key

    def describe(self, language: str) -> str:
        return self.descriptions.get(language) or self.descriptions.get("en") or ""


class Features(Model):
    voice: bool
    image_generation: bool
    image_credits: int
    image_vip_only: bool


class Limits(Model):
    max_message_chars: int
    voice_max_seconds: int
    voice_max_bytes: int
    image_max_bytes: int
    document_max_bytes: int
    document_max_pages: int
    custom_instructions_max_chars: int
    document_types: list[str]  # file extensions without the dot: "pdf", "txt", ...
    image_types: list[str]  # media types: "image/jpeg", ...


class Catalog(Model):
    default_model: str
    providers: list[CatalogProvider]
    modes: list[ChatMode]
    default_mode: str
    features: Features
    limits: Limits

    def find(self, model_key: str) -> tuple[CatalogProvider, CatalogModel] | None:
        """The provider and model of a model key."""
        for provider in self.providers:
            for model in provider.models:
                if model.key == model_key:
                    return provider, model
        return None

    def provider(self, key: str) -> CatalogProvider | None:
        return next((p for p in self.providers if p.key == key), None)

    def mode(self, key: str) -> ChatMode | None:
        return next((m for m in self.modes if m.key == key), None)

    def image_models(self) -> list[tuple[CatalogProvider, CatalogModel]]:
        """Available models that accept image input, in menu order."""
        return [
            (provider, model)
            for provider in self.providers
            for model in provider.models
            if provider.available and model.available and model.images
        ]


Kind = Literal["text", "voice", "photo", "document", "image"]


class Attachment(Model):
    """A file sent with a message: base64 of its bytes and what Telegram said of it."""

    data: str
    media_type: str
    filename: str | None = None
    duration_s: int | None = None


class Source(Model):
    title: str
    url: str
    date: str | None = None


class Usage(Model):
    input_tokens: int
    output_tokens: int


class StartEvent(Model):
    type: Literal["start"]
    message_id: int
    provider: str
    model: str
    trimmed: bool
    free_messages_left: int
    is_vip: bool
    document_truncated: bool


class TranscriptEvent(Model):
    type: Literal["transcript"]
    text: str


class DeltaEvent(Model):
    type: Literal["delta"]
    text: str


class ReasoningEvent(Model):
    type: Literal["reasoning"]
    text: str


class SourcesEvent(Model):
    type: Literal["sources"]
    sources: list[Source]


class ProgressEvent(Model):
    type: Literal["progress"]
    stage: str
    elapsed_s: float


class GeneratedImage(Model):
    media_type: str
    data: str  # base64


class DoneEvent(Model):
    type: Literal["done"]
    message_id: int
    provider: str
    model: str
    text: str
    reasoning: str | None
    sources: list[Source]
    usage: Usage | None
    cost_usd: Decimal | None
    free_messages_left: int
    is_vip: bool
    trimmed: bool
    kind: str
    transcript: str | None
    document_truncated: bool
    image: GeneratedImage | None
    credits_charged: int


class ErrorEvent(Model):
    type: Literal["error"]
    code: str
    message: str
    refunded: bool
    free_messages_left: int


StreamEvent = Annotated[
    StartEvent
    | TranscriptEvent
    | DeltaEvent
    | ReasoningEvent
    | SourcesEvent
    | ProgressEvent
    | DoneEvent
    | ErrorEvent,
    Field(discriminator="type"),
]
STREAM_EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)


class Plan(Model):
    stars_amount: int
    period_days: int
    subscription: bool
    subscription_period_s: int | None
    fiat_amount: int | None
    fiat_currency: str | None


class Invoice(Model):
    payload: str
    currency: str
    amount: int
    period_days: int
    subscription_period_s: int | None
    rail: Literal["stars", "fiat"]


class PreCheckout(Model):
    ok: bool
    error_code: str | None = None
    message: str | None = None


class PaymentResult(Model):
    transaction_id: int
    duplicate: bool
    vip_extended: bool
    vip_expires_at: datetime | None
    error_code: str | None = None


class TransactionInfo(Model):
    id: int
    telegram_id: int
    rail: str
    status: str
    amount: int
    currency: str
    telegram_payment_charge_id: str | None


class RefundResult(Model):
    refunded: bool
    telegram_id: int
    vip_expires_at: datetime | None


class SubscriptionInfo(Model):
    telegram_id: int
    is_vip: bool
    vip_expires_at: datetime | None
    auto_renew: bool
    status: str | None
    telegram_charge_id: str | None


class UpdateClaim(Model):
    claimed: bool


class Forgotten(Model):
    forgotten: int  # messages whose texts were erased


# Operators (/api/v1/admin).
Audience = Literal["all", "vip", "free"]
AUDIENCES: tuple[Audience, ...] = ("all", "vip", "free")


class ModelUsage(Model):
    provider: str
    model: str
    count: int
    failed: int


class Revenue(Model):
    currency: str
    amount: int


class ErrorRate(Model):
    provider: str
    total: int
    failed: int
    rate: float


class AdminStats(Model):
    users_total: int
    users_new_today: int
    vip_active: int
    paying_users: int
    conversion: float
    messages_today: list[ModelUsage]
    cost_today_usd: Decimal
    cost_month_usd: Decimal
    revenue_month: list[Revenue]
    refunds_month: int
    error_rate: list[ErrorRate]


class AdminPayment(Model):
    charge_id: str | None
    amount: int
    currency: str
    status: str
    paid_at: datetime | None
    refunded_at: datetime | None


class AdminUserCard(Model):
    telegram_id: int
    username: str | None
    first_name: str | None
    language: str
    created_at: datetime
    blocked: bool
    bot_blocked: bool = False
    vip_until: datetime | None
    auto_renew: bool
    free_messages_left: int | None = None
    free_messages_limit: int | None = None
    messages_total: int
    cost_total_usd: Decimal
    payments: list[AdminPayment]
    cancel_stars_charge_id: str | None = None


class BroadcastInfo(Model):
    id: int
    admin_telegram_id: int
    audience: Audience
    status: Literal["running", "done", "canceled"]
    from_chat_id: int
    message_id: int
    total: int
    delivered: int
    blocked: int
    failed: int
    cursor: int


class BroadcastBatch(Model):
    broadcast: BroadcastInfo
    recipients: list[int]


class AudienceCount(Model):
    audience: Audience
    count: int

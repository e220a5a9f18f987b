"""Request and response bodies of the backend API (the bot's client mirrors these)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from backend.models.enums import (
    BroadcastAudience,
    BroadcastStatus,
    CreditKind,
    Language,
    MessageKind,
)

MAX_BIGINT = 2**63 - 1


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _whole_number(value: object) -> object:
    # JSON Schema's integer includes 5.0; request bodies are strict (ApiIn) and would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]
# After the Field: placed before it, the bounds would not reach the JSON schema (pydantic).
WHOLE = BeforeValidator(_whole_number)
TelegramId = Annotated[int, Field(gt=0, le=MAX_BIGINT, description="Telegram user id"), WHOLE]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class ApiIn(ApiModel):
    """A request body: JSON types exactly as documented (`true` is no 1, "5" is no 5).

    Enums and datetimes arrive as JSON strings, so those fields opt out with strict=False.
    """

    model_config = ConfigDict(strict=True)


class ErrorDetail(ApiModel):
    code: str
    message: str
    details: Any | None = None


class ErrorBody(ApiModel):
    error: ErrorDetail


class TelegramProfile(ApiIn):
    """What the bot knows of a Telegram user; sent on first contact and to refresh."""

    telegram_id: TelegramId
    username: Annotated[SafeStr, Field(max_length=64)] | None = None
    first_name: Annotated[SafeStr, Field(max_length=256)] | None = None
    last_name: Annotated[SafeStr, Field(max_length=256)] | None = None
    language_code: Annotated[SafeStr, Field(max_length=35)] | None = None


class UserUpdate(ApiIn):
    """Fields a user may change; at least one must be given."""

    provider: Annotated[SafeStr, Field(min_length=1, max_length=32)] | None = None
    model: Annotated[SafeStr, Field(min_length=1, max_length=64)] | None = None
    language: Annotated[Language | None, Field(strict=False)] = None
    show_reasoning: bool | None = None
    mode: Annotated[SafeStr, Field(min_length=1, max_length=32)] | None = None
    # "" clears the instruction; the length limit is a setting, checked by the service.
    custom_instructions: Annotated[SafeStr, Field(max_length=20_000)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> "UserUpdate":
        values = (
            self.provider,
            self.model,
            self.language,
            self.show_reasoning,
            self.mode,
            self.custom_instructions,
        )
        if all(value is None for value in values):
            raise ValueError(
                "give at least one of provider, model, language, show_reasoning, mode,"
                " custom_instructions"
            )
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
    show_reasoning: bool
    mode: str
    custom_instructions: str | None
    created_at: datetime
    blocked: bool = False  # an operator suspended the user: no answers, no payments


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


# 20 MB (what Telegram lets a bot download) in base64, with room for padding.
MAX_ATTACHMENT_BASE64 = 28 * 1024 * 1024
WITH_ATTACHMENT = frozenset({MessageKind.VOICE, MessageKind.PHOTO, MessageKind.DOCUMENT})


class AttachmentIn(ApiIn):
    """A file from the user's message (voice, photo, document), inline as base64."""

    data: Annotated[str, Field(min_length=1, max_length=MAX_ATTACHMENT_BASE64)]
    media_type: Annotated[str, Field(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=127)]
    filename: Annotated[SafeStr, Field(min_length=1, max_length=255)] | None = None
    duration_s: Annotated[int, Field(ge=0, le=86_400), WHOLE] | None = None


class MessageIn(ApiIn):
    """A user's message to answer with their chosen model.

    `kind` says what it is: typed text, a voice note (transcribed, then answered), a photo
    (the text is its caption), a document (the text is the question about it) or a request
    for a picture (the text describes it).
    """

    telegram_id: TelegramId
    text: SafeStr = ""
    client_message_id: Annotated[SafeStr, Field(min_length=1, max_length=64)] | None = None
    stream: bool = False
    kind: Annotated[MessageKind, Field(strict=False)] = MessageKind.TEXT
    attachment: AttachmentIn | None = None

    @model_validator(mode="after")
    def _shape(self) -> "MessageIn":
        if self.kind in WITH_ATTACHMENT and self.attachment is None:
            raise ValueError(f"a {self.kind} message needs an attachment")
        if self.kind not in WITH_ATTACHMENT and self.attachment is not None:
            raise ValueError(f"a {self.kind} message takes no attachment")
        if self.kind in (MessageKind.TEXT, MessageKind.IMAGE) and not self.text.strip():
            raise ValueError(f"a {self.kind} message needs text")
        return self


class SourceOut(ApiModel):
    title: str
    url: str
    date: str | None = None
    snippet: str | None = None


class UsageOut(ApiModel):
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0


class ImageOut(ApiModel):
    """A generated picture, inline as base64."""

    media_type: str
    data: str


class MessageOut(ApiModel):
    """A complete answer (JSON mode), and the `done` event's body (stream mode)."""

    message_id: int
    provider: str
    model: str
    text: str
    reasoning: str | None
    sources: list[SourceOut]
    usage: UsageOut | None
    cost_usd: Decimal | None
    latency_ms: int
    free_messages_left: int
    is_vip: bool
    trimmed: bool
    kind: MessageKind = MessageKind.TEXT
    transcript: str | None = None  # what a voice message said
    document_truncated: bool = False  # the document was cut to fit the model
    image: ImageOut | None = None  # the picture of an /image request
    credits_charged: int = 0


class StartEvent(ApiModel):
    type: Literal["start"] = "start"
    message_id: int
    provider: str
    model: str
    trimmed: bool
    free_messages_left: int
    is_vip: bool
    document_truncated: bool = False


class TranscriptEvent(ApiModel):
    """What a voice message said, sent before the answer to it."""

    type: Literal["transcript"] = "transcript"
    text: str


class DeltaEvent(ApiModel):
    type: Literal["delta"] = "delta"
    text: str


class ReasoningEvent(ApiModel):
    type: Literal["reasoning"] = "reasoning"
    text: str


class SourcesEvent(ApiModel):
    type: Literal["sources"] = "sources"
    sources: list[SourceOut]


class ProgressEvent(ApiModel):
    type: Literal["progress"] = "progress"
    stage: str
    elapsed_s: float


class DoneEvent(MessageOut):
    type: Literal["done"] = "done"


class ErrorEvent(ApiModel):
    type: Literal["error"] = "error"
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


class ModelOut(ApiModel):
    key: str
    label: str
    available: bool
    reasoning: bool
    long_running: bool
    images: bool = False  # accepts photos


class ProviderOut(ApiModel):
    key: str
    label: str
    available: bool
    models: list[ModelOut]


class ModeOut(ApiModel):
    key: str
    labels: dict[str, str]  # by interface language
    descriptions: dict[str, str]


class FeaturesOut(ApiModel):
    voice: bool  # voice notes are transcribed
    image_generation: bool  # /image works
    image_credits: int  # free messages one picture costs
    image_vip_only: bool


class LimitsOut(ApiModel):
    max_message_chars: int
    voice_max_seconds: int
    voice_max_bytes: int
    image_max_bytes: int
    document_max_bytes: int
    document_max_pages: int
    custom_instructions_max_chars: int
    document_types: list[str]  # file extensions read as documents
    image_types: list[str]  # media types accepted as photos


class CatalogOut(ApiModel):
    default_model: str
    providers: list[ProviderOut]
    default_mode: str
    modes: list[ModeOut]
    features: FeaturesOut
    limits: LimitsOut


class ConversationOut(ApiModel):
    conversation_id: int
    created_at: datetime


PaymentRailName = Literal["stars", "fiat"]
ChargeId = Annotated[SafeStr, Field(min_length=1, max_length=255)]
Payload = Annotated[SafeStr, Field(min_length=1, max_length=128)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
MAX_INT32 = 2**31 - 1  # amounts are INTEGER columns; Telegram's fit comfortably
Amount = Annotated[int, Field(ge=0, le=MAX_INT32), WHOLE]
PositiveAmount = Annotated[int, Field(gt=0, le=MAX_INT32), WHOLE]


class PlanOut(ApiModel):
    """What VIP costs on each rail the operator configured."""

    stars_amount: int
    period_days: int
    subscription: bool  # True: a Stars subscription renewed monthly by Telegram
    subscription_period_s: int | None
    fiat_amount: int | None
    fiat_currency: str | None


class OfferIn(ApiIn):
    telegram_id: TelegramId
    rail: PaymentRailName = "stars"


class InvoiceOut(ApiModel):
    """Everything the bot needs for createInvoiceLink / sendInvoice (minus its own token)."""

    payload: str
    currency: str
    amount: int
    period_days: int
    subscription_period_s: int | None
    rail: PaymentRailName
    expires_at: datetime


class PreCheckoutIn(ApiIn):
    telegram_id: TelegramId
    payload: Payload
    currency: Currency
    total_amount: Amount


class PreCheckoutOut(ApiModel):
    ok: bool
    error_code: str | None = None
    message: str | None = None


class SuccessfulPaymentIn(ApiIn):
    """Telegram's `successful_payment`, as the bot received it."""

    telegram_id: TelegramId
    payload: Payload
    currency: Currency
    total_amount: PositiveAmount
    telegram_payment_charge_id: ChargeId
    provider_payment_charge_id: Annotated[SafeStr, Field(max_length=255)] | None = None
    is_recurring: bool = False
    is_first_recurring: bool = False
    subscription_expiration_date: Annotated[datetime | None, Field(strict=False)] = None


class PaymentOut(ApiModel):
    transaction_id: int
    duplicate: bool  # this charge was recorded before: nothing changed now
    vip_extended: bool
    vip_expires_at: datetime | None
    error_code: str | None = None


class TransactionOut(ApiModel):
    id: int
    telegram_id: int
    rail: str
    status: str
    amount: int
    currency: str
    telegram_payment_charge_id: str | None
    is_recurring: bool
    paid_at: datetime | None
    refunded_at: datetime | None


class RefundIn(ApiIn):
    telegram_payment_charge_id: ChargeId
    admin_telegram_id: TelegramId | None = None  # set for an operator's refund (checked)


class RefundOut(ApiModel):
    refunded: bool  # False when it was refunded before
    telegram_id: int
    vip_expires_at: datetime | None


class SubscriptionOut(ApiModel):
    telegram_id: int
    is_vip: bool
    vip_expires_at: datetime | None
    auto_renew: bool
    status: str | None
    telegram_charge_id: str | None


class AutoRenewIn(ApiIn):
    enabled: bool


class SubscriptionStateIn(ApiIn):
    """Telegram's subscription update: the user canceled, re-enabled, or renewal failed."""

    telegram_id: TelegramId
    state: Literal["canceled", "active", "failed"]


class PaymentEventIn(ApiIn):
    """An external payment provider's notification (signed; see the README)."""

    event_id: Annotated[SafeStr, Field(min_length=1, max_length=128)]
    type: Literal["payment.succeeded", "payment.refunded"]
    telegram_id: TelegramId
    amount: PositiveAmount
    currency: Currency
    charge_id: ChargeId
    payload: Payload | None = None


class PaymentEventOut(ApiModel):
    event_id: str
    duplicate: bool


class ClaimIn(ApiIn):
    update_id: Annotated[int, Field(ge=0, le=MAX_BIGINT), WHOLE]


class ClaimOut(ApiModel):
    claimed: bool  # False: another delivery of this update was claimed before


class ForgetOut(ApiModel):
    forgotten: int  # messages whose texts were erased


# Operators (/api/v1/admin): the caller's Telegram id comes in the X-Admin-Id header.
MAX_BROADCAST_BATCH = 500
ChatId = Annotated[int, Field(ge=-MAX_BIGINT, le=MAX_BIGINT), WHOLE]
BigId = Annotated[int, Field(gt=0, le=MAX_BIGINT), WHOLE]
Count = Annotated[int, Field(ge=0, le=MAX_BROADCAST_BATCH), WHOLE]


class ModelUsageOut(ApiModel):
    provider: str
    model: str
    count: int
    failed: int


class RevenueOut(ApiModel):
    currency: str
    amount: int  # minor units (Stars are whole)


class ErrorRateOut(ApiModel):
    provider: str
    total: int  # settled answers
    failed: int
    rate: float  # failed / total


class AdminStats(ApiModel):
    """How the bot is doing; "today" and "month" are UTC calendar periods."""

    users_total: int
    users_new_today: int
    vip_active: int
    paying_users: int  # users with a charge that is not refunded
    conversion: float  # paying_users / users_total
    messages_today: list[ModelUsageOut]
    cost_today_usd: Decimal
    cost_month_usd: Decimal
    revenue_month: list[RevenueOut]  # paid in the month, minus refunded in the month
    refunds_month: int
    error_rate: list[ErrorRateOut]  # today, by provider


class AdminPaymentOut(ApiModel):
    charge_id: str | None
    amount: int
    currency: str
    status: str
    paid_at: datetime | None
    refunded_at: datetime | None


class AdminUserCard(ApiModel):
    """A user as an operator sees them."""

    telegram_id: int
    username: str | None
    first_name: str | None
    language: str
    created_at: datetime
    last_seen_at: datetime
    blocked: bool
    bot_blocked: bool  # Telegram refused our messages: they blocked the bot
    vip_until: datetime | None
    auto_renew: bool
    free_messages_left: int
    free_messages_limit: int
    messages_used: int  # free messages used
    messages_total: int  # answers given
    cost_total_usd: Decimal
    payments: list[AdminPaymentOut]  # the newest 10
    # After a revoke: the Stars subscription to cancel with editUserStarSubscription.
    cancel_stars_charge_id: str | None = None


class GrantVipIn(ApiIn):
    days: Annotated[int, Field(ge=1, le=3650), WHOLE]


class BroadcastIn(ApiIn):
    audience: Annotated[BroadcastAudience, Field(strict=False)]
    from_chat_id: ChatId
    message_id: BigId


class BroadcastOut(ApiModel):
    id: int
    admin_telegram_id: int
    audience: BroadcastAudience
    status: BroadcastStatus
    from_chat_id: int
    message_id: int
    total: int
    delivered: int
    blocked: int
    failed: int
    cursor: int  # the last recipient's telegram_id handled
    lease_until: datetime | None
    created_at: datetime
    finished_at: datetime | None


class AudienceOut(ApiModel):
    audience: BroadcastAudience
    count: int


class BatchIn(ApiIn):
    limit: Annotated[int, Field(ge=1, le=MAX_BROADCAST_BATCH), WHOLE]
    lease_seconds: Annotated[int, Field(ge=1, le=3600), WHOLE] = 300


class BatchOut(ApiModel):
    broadcast: BroadcastOut
    recipients: list[int]  # after the cursor, in order; empty when nothing is left


class ProgressIn(ApiIn):
    """What a runner did for the recipients up to `cursor` (counts are increments)."""

    cursor: Annotated[int, Field(ge=0, le=MAX_BIGINT), WHOLE]
    delivered: Count = 0
    blocked: Count = 0
    failed: Count = 0
    blocked_ids: Annotated[list[TelegramId], Field(max_length=MAX_BROADCAST_BATCH)] = []

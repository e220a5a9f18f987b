"""Answering a message: reserve a credit, call the chosen model, then commit or refund.

No database transaction or connection is held while the provider works: the reservation
and the settlement are each their own short transaction.
"""

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.database import crud
from backend.models.database import MessageLog, User
from backend.models.enums import MessageKind, MessageStatus
from backend.models.schemas import (
    CatalogOut,
    ConversationOut,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    FeaturesOut,
    ImageOut,
    LimitsOut,
    MessageIn,
    MessageOut,
    ModelOut,
    ModeOut,
    ProgressEvent,
    ProviderOut,
    ReasoningEvent,
    SourceOut,
    SourcesEvent,
    StartEvent,
    TranscriptEvent,
    UsageOut,
)
from backend.services.attachments import IMAGE_TYPES, Incoming, read_incoming
from backend.services.catalog import Catalog, ModelEntry
from backend.services.clock import Clock, utcnow
from backend.services.credit_service import CreditService, FairUse, Reservation
from backend.services.documents import DOCUMENT_TYPES
from backend.services.providers.base import (
    Progress,
    ProviderError,
    ProviderNotConfigured,
    ProviderRequest,
    ReasoningDelta,
    Sources,
    TextDelta,
    Turn,
    Usage,
)
from backend.services.providers.media import GeneratedImage
from backend.services.providers.registry import ProviderRegistry
from backend.services.user_service import require_user
from backend.utils.exceptions import (
    DomainError,
    DuplicateRequest,
    ImageGenerationUnavailable,
    ImagesNotSupported,
    MessageTooLong,
    UserBlocked,
    VoiceUnavailable,
)
from backend.utils.logger import get_logger
from backend.utils.metrics import BackendMetrics, discarded

log = get_logger("backend.answers")

# The database went away (restart, network): what settling an answer may raise then.
DATABASE_FAILURES = (OperationalError, InterfaceError, PoolTimeout, OSError)

# Without the provider's tokenizer, count conservatively: about 3 characters a token (Cyrillic
# and code run shorter than English prose), plus a few tokens of framing per turn.
CHARS_PER_TOKEN = 3
TURN_OVERHEAD_TOKENS = 4
HISTORY_ROWS = 100
MILLION = Decimal(1_000_000)


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + TURN_OVERHEAD_TOKENS


def fit_history(
    pairs_newest_first: list[tuple[str, str]], question: str, budget: int, more_exist: bool
) -> tuple[list[Turn], bool]:
    """The newest question/answer pairs that fit `budget` tokens with the new question.

    Oldest pairs are dropped first; the flag says whether anything was dropped.
    """
    used = estimate_tokens(question)
    kept: list[tuple[str, str]] = []
    trimmed = more_exist
    for asked, answered in pairs_newest_first:
        cost = estimate_tokens(asked) + estimate_tokens(answered)
        if used + cost > budget:
            trimmed = True
            break
        kept.append((asked, answered))
        used += cost
    turns: list[Turn] = []
    for asked, answered in reversed(kept):
        turns += [Turn("user", asked), Turn("assistant", answered)]
    turns.append(Turn("user", question))
    return turns, trimmed


def token_cost(
    usage: Usage | None,
    price_input: Decimal | None,
    price_cached: Decimal | None,
    price_output: Decimal | None,
) -> Decimal | None:
    """The provider's own figure when it gives one, else tokens times the prices per 1M."""
    if usage is None:
        return None
    if usage.cost_usd is not None:
        return usage.cost_usd.quantize(Decimal("0.000001"))
    if price_input is None or price_output is None:
        return None
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_price = price_input if price_cached is None else price_cached
    total = (
        Decimal(usage.input_tokens - cached) * price_input
        + Decimal(cached) * cached_price
        + Decimal(usage.output_tokens) * price_output
    ) / MILLION
    return total.quantize(Decimal("0.000001"))


def compute_cost(entry: ModelEntry, usage: Usage | None) -> Decimal | None:
    """What an answer cost: the provider's figure, or tokens times the catalog's prices."""
    return token_cost(
        usage, entry.price_input_per_1m, entry.price_cached_input_per_1m, entry.price_output_per_1m
    )


def compose_instructions(system_prompt: str, mode_prompt: str, custom: str | None) -> str:
    """The system prompt: the operator's, then the chat mode's, then the user's own."""
    parts = [system_prompt.strip(), mode_prompt.strip()]
    if custom:
        parts.append(f"The user's own instructions for every answer:\n{custom.strip()}")
    return "\n\n".join(part for part in parts if part)


def fit_document(name: str, text: str, budget_tokens: int) -> tuple[str, bool]:
    """The document as context for the question, cut to `budget_tokens`; True when cut."""
    limit = max(budget_tokens - TURN_OVERHEAD_TOKENS, 0) * CHARS_PER_TOKEN
    cut = len(text) > limit
    body = text[:limit]
    return f'<document name="{name}">\n{body}\n</document>', cut


@dataclass
class PreparedAnswer:
    """A reserved message ready to be answered."""

    reservation: Reservation
    entry: ModelEntry
    incoming: Incoming
    instructions: str
    question: str
    history: list[tuple[str, str]]
    more_history: bool
    request: ProviderRequest | None = None  # built once the question is known (after speech)
    trimmed: bool = False
    document_truncated: bool = False
    started: float = field(default_factory=time.monotonic)
    failure: ProviderError | None = None


@dataclass
class Outcome:
    """What the providers produced for one message, gathered while it streams."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    sources: dict[str, SourceOut] = field(default_factory=dict)
    usage: Usage | None = None
    first_token_ms: int | None = None
    transcript: str | None = None
    audio_seconds: float | None = None
    image: GeneratedImage | None = None


@dataclass
class Replay:
    """A repeated request whose answer already exists: sent again, not charged again."""

    answer: MessageOut


class ChatService:
    """The use case behind POST /api/v1/messages, and the conversation controls.

    Every kind of message (text, voice, photo, document, picture request) takes the same path:
    checks and limits, reserve, provider calls with no database connection held, then commit
    or refund, and the history.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        catalog: Catalog,
        providers: ProviderRegistry,
        clock: Clock = utcnow,
        *,
        metrics: BackendMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._catalog = catalog
        self._providers = providers
        self._clock = clock
        self._metrics = metrics or discarded()

    def models(self) -> CatalogOut:
        """The menu with what is available now (a provider without a key is not)."""
        providers = []
        for key, provider in self._catalog.providers.items():
            available = (
                self._providers.available(key)
                and self._providers.breakers.retry_after_s(key) is None
            )
            models = [
                ModelOut(
                    key=m.key,
                    label=m.label,
                    available=available,
                    reasoning=m.reasoning,
                    long_running=m.long_running,
                    images=m.images,
                )
                for m in self._catalog.models
                if m.provider == key
            ]
            providers.append(
                ProviderOut(key=key, label=provider.label, available=available, models=models)
            )
        settings = self._settings
        return CatalogOut(
            default_model=self._catalog.default_model,
            providers=providers,
            default_mode=self._catalog.default_mode,
            modes=[
                ModeOut(
                    key=m.key,
                    labels={"en": m.label_en, "ru": m.label_ru},
                    descriptions={"en": m.description_en, "ru": m.description_ru},
                )
                for m in self._catalog.modes
            ],
            features=FeaturesOut(
                voice=self._providers.transcriber is not None,
                image_generation=self._providers.images is not None,
                image_credits=settings.picture_credits,
                image_vip_only=settings.picture_vip_only,
            ),
            limits=LimitsOut(
                max_message_chars=settings.max_message_chars,
                voice_max_seconds=settings.voice_max_seconds,
                voice_max_bytes=settings.voice_max_bytes,
                image_max_bytes=settings.photo_max_bytes,
                document_max_bytes=settings.document_max_bytes,
                document_max_pages=settings.document_max_pages,
                custom_instructions_max_chars=settings.custom_instructions_max_chars,
                document_types=list(DOCUMENT_TYPES),
                image_types=list(IMAGE_TYPES),
            ),
        )

    async def reset(self, telegram_id: int) -> ConversationOut:
        """Start a new conversation: later answers do not see the earlier messages."""
        async with self._sessions() as session:
            user = await require_user(session, telegram_id)
            conversation = await crud.new_conversation(session, user.id)
            await session.refresh(conversation)
            result = ConversationOut(
                conversation_id=conversation.id, created_at=conversation.created_at
            )
            await session.commit()
            return result

    def _check_available(self, kind: MessageKind) -> None:
        if kind == MessageKind.VOICE and self._providers.transcriber is None:
            raise VoiceUnavailable()
        if kind == MessageKind.IMAGE and self._providers.images is None:
            raise ImageGenerationUnavailable()

    def _check_circuits(self, kind: MessageKind, entry: ModelEntry) -> None:
        """Refuse before reserving when a provider this message needs is failing."""
        breakers = self._providers.breakers
        generation, transcription = self._catalog.image_generation, self._catalog.transcription
        if kind == MessageKind.IMAGE:
            if generation is not None:
                breakers.check(generation.provider)
            return
        if kind == MessageKind.VOICE and transcription is not None:
            breakers.check(transcription.provider)
        breakers.check(entry.provider)

    def _image_models(self) -> list[str]:
        return [
            m.key
            for m in self._catalog.models
            if m.images and self._providers.available(m.provider)
        ]

    def _instructions(self, user: User) -> str:
        mode = self._catalog.mode(user.mode) or self._catalog.mode(self._catalog.default_mode)
        return compose_instructions(
            self._settings.system_prompt, mode.prompt if mode else "", user.custom_instructions
        )

    async def prepare(self, body: MessageIn) -> PreparedAnswer | Replay:
        """Check the message and its limits, reserve, gather the history (no provider call yet)."""
        limit = self._settings.max_message_chars
        if len(body.text) > limit:
            raise MessageTooLong(
                f"The message is {len(body.text)} characters; the limit is {limit}.",
                limit=limit,
                length=len(body.text),
            )
        self._check_available(body.kind)
        incoming = await read_incoming(body, self._settings)
        limits = FairUse(self._settings.user_messages_per_minute, self._settings.vip_daily_messages)
        async with self._sessions() as session:
            credits = CreditService(session, self._clock, limits)
            context = await credits.load_context(body.telegram_id)
            user = context.user
            if user.blocked_at is not None:
                raise UserBlocked
            entry = self._catalog.get(user.model) or self._catalog.default
            if body.kind != MessageKind.IMAGE and not self._providers.available(entry.provider):
                raise ProviderNotConfigured(provider=entry.provider, model=entry.key)
            if incoming.images and not entry.images:
                raise ImagesNotSupported(
                    f"{entry.key} does not accept images.",
                    model=entry.key,
                    image_models=self._image_models(),
                )
            picture = body.kind == MessageKind.IMAGE
            generation = self._catalog.image_generation
            self._check_circuits(body.kind, entry)
            try:
                reservation = await credits.reserve(
                    body.telegram_id,
                    provider=generation.provider if picture and generation else entry.provider,
                    model="image" if picture else entry.key,
                    api_model=generation.api_model if picture and generation else entry.api_model,
                    request_text=incoming.stored_text(),
                    client_message_id=body.client_message_id,
                    kind=body.kind,
                    credits=self._settings.picture_credits if picture else 1,
                    vip_only=picture and self._settings.picture_vip_only,
                    context=context,
                    # Pictures made on request do not read the conversation back.
                    history_limit=0 if picture else HISTORY_ROWS + 1,
                )
            except DuplicateRequest as duplicate:
                return self._replay(duplicate, context)
            except DomainError as refusal:
                self._metrics.answer_refused(entry.provider, entry.key, refusal.code)
                raise
            instructions = self._instructions(user)
            question = incoming.question(user.language)
        pairs = list(reservation.history)
        prepared = PreparedAnswer(
            reservation=reservation,
            entry=entry,
            incoming=incoming,
            instructions=instructions,
            question=question,
            history=pairs[:HISTORY_ROWS],
            more_history=len(pairs) > HISTORY_ROWS,
        )
        if incoming.kind not in (MessageKind.VOICE, MessageKind.IMAGE):
            self._build_request(prepared, question)
        return prepared

    def _build_request(self, prepared: PreparedAnswer, question: str) -> None:
        """The provider request: the question (with its document) and the history that fits."""
        entry, incoming = prepared.entry, prepared.incoming
        budget = entry.history_budget_tokens
        if incoming.document is not None:
            context, cut = fit_document(
                incoming.document.name,
                incoming.document.text,
                budget - estimate_tokens(question),
            )
            question = f"{question}\n\n{context}"
            prepared.document_truncated = cut or incoming.document.pages_cut
        turns, prepared.trimmed = fit_history(
            prepared.history, question, budget, prepared.more_history
        )
        if incoming.images:
            turns[-1] = Turn("user", turns[-1].content, incoming.images)
        prepared.request = ProviderRequest(
            api_model=entry.api_model,
            instructions=prepared.instructions,
            turns=turns,
            options=dict(entry.options),
            stream=bool(entry.options.get("stream", True)),
            max_output_tokens=entry.max_output_tokens,
            timeout_s=entry.timeout_s,
        )

    def _replay(self, duplicate: DuplicateRequest, context: crud.AnswerContext) -> Replay:
        message = duplicate.existing
        if message is None or message.status != MessageStatus.SUCCESS.value:
            raise duplicate
        is_vip = context.vip_expires_at is not None
        return Replay(answer=stored_answer(message, context.messages_left, is_vip))

    async def events(self, prepared: PreparedAnswer | Replay) -> AsyncIterator[BaseModel]:
        """The answer as a stream of events: start, deltas..., then done or error."""
        if isinstance(prepared, Replay):
            answer = prepared.answer
            yield StartEvent(
                message_id=answer.message_id,
                provider=answer.provider,
                model=answer.model,
                trimmed=answer.trimmed,
                free_messages_left=answer.free_messages_left,
                is_vip=answer.is_vip,
            )
            yield DoneEvent(**answer.model_dump())
            return
        reservation = prepared.reservation
        yield StartEvent(
            message_id=reservation.message_id,
            provider=reservation.provider,
            model=reservation.model,
            trimmed=prepared.trimmed,
            free_messages_left=reservation.free_messages_left,
            is_vip=reservation.is_vip,
            document_truncated=prepared.document_truncated,
        )
        # Every way out of here passes through _succeed or _settle_failure, which take it back.
        self._metrics.answers_in_flight.inc()
        outcome = Outcome()
        try:
            async for event in self._produce(prepared, outcome):
                yield event
        except ProviderError as failure:
            yield await self._fail(prepared, failure, outcome.first_token_ms)
            return
        except Exception:
            log.exception("answer_crashed", message_id=reservation.message_id)
            yield await self._fail(prepared, ProviderError(), outcome.first_token_ms)
            return
        except BaseException:
            # The caller went away (client disconnect, shutdown): nobody gets this answer.
            await asyncio.shield(
                self._settle_failure(prepared, "cancelled", outcome.first_token_ms)
            )
            raise
        try:
            yield await self._succeed(prepared, outcome)
        except DATABASE_FAILURES as exc:
            # The answer exists but cannot be recorded: it is not delivered, and the sweeper
            # gives the reserved credit back once the database returns.
            log.warning(
                "answer_not_recorded",
                message_id=reservation.message_id,
                error=type(exc).__name__,
            )
            yield ErrorEvent(
                code="database_unavailable",
                message="The answer could not be saved; any charge is returned automatically.",
                refunded=False,
                free_messages_left=reservation.free_messages_left,
            )

    async def _produce(
        self, prepared: PreparedAnswer, outcome: Outcome
    ) -> AsyncIterator[BaseModel]:
        """Call the providers for this message, filling `outcome` and yielding what streams."""
        incoming = prepared.incoming
        breakers = self._providers.breakers
        if incoming.kind == MessageKind.IMAGE:
            images = self._providers.images
            if images is None:
                raise ImageGenerationUnavailable()
            async with breakers.guard(images.entry.provider):
                outcome.image = await images.generate(prepared.question)
            outcome.usage = outcome.image.usage
            return
        if incoming.audio is not None:
            transcriber = self._providers.transcriber
            if transcriber is None:
                raise VoiceUnavailable()
            audio = incoming.audio
            async with breakers.guard(transcriber.entry.provider):
                transcript = await transcriber.transcribe(
                    audio.data, audio.filename, audio.media_type
                )
            outcome.transcript = transcript.text
            outcome.audio_seconds = transcript.duration_s or audio.duration_s
            yield TranscriptEvent(text=transcript.text)
            self._build_request(prepared, transcript.text)
        assert prepared.request is not None
        provider = prepared.reservation.provider
        async with breakers.guard(provider):
            async for event in self._model_events(prepared, outcome):
                yield event

    async def _model_events(
        self, prepared: PreparedAnswer, outcome: Outcome
    ) -> AsyncIterator[BaseModel]:
        """The chat model's answer as API events, gathered into `outcome` on the way."""
        assert prepared.request is not None
        adapter = self._providers.adapter(prepared.reservation.provider)
        async for event in adapter.answer(prepared.request):
            if isinstance(event, TextDelta):
                if outcome.first_token_ms is None:
                    outcome.first_token_ms = self._elapsed_ms(prepared)
                outcome.text.append(event.text)
                yield DeltaEvent(text=event.text)
            elif isinstance(event, ReasoningDelta):
                outcome.reasoning.append(event.text)
                yield ReasoningEvent(text=event.text)
            elif isinstance(event, Sources):
                fresh = [
                    SourceOut(title=s.title, url=s.url, date=s.date, snippet=s.snippet)
                    for s in event.items
                    if s.url not in outcome.sources
                ]
                outcome.sources.update((s.url, s) for s in fresh)
                if fresh:
                    yield SourcesEvent(sources=fresh)
            elif isinstance(event, Progress):
                yield ProgressEvent(
                    stage=event.stage, elapsed_s=time.monotonic() - prepared.started
                )
            elif isinstance(event, Usage):
                outcome.usage = event
        if not "".join(outcome.text).strip():
            raise ProviderError("The AI provider returned an empty answer.")

    async def answer(self, body: MessageIn) -> MessageOut:
        """JSON mode: the complete answer, or the provider's error after the refund."""
        prepared = await self.prepare(body)
        if isinstance(prepared, Replay):
            return prepared.answer
        async for event in self.events(prepared):
            if isinstance(event, DoneEvent):
                return MessageOut(**event.model_dump(exclude={"type"}))
            if isinstance(event, ErrorEvent):
                assert prepared.failure is not None
                prepared.failure.details.update(
                    refunded=event.refunded, free_messages_left=event.free_messages_left
                )
                raise prepared.failure
        raise ProviderError  # unreachable: events always end with done or error

    def _elapsed_ms(self, prepared: PreparedAnswer) -> int:
        return int((time.monotonic() - prepared.started) * 1000)

    def _cost(self, prepared: PreparedAnswer, outcome: Outcome) -> Decimal | None:
        """The answer's cost in USD: model tokens, plus speech minutes, or the picture."""
        if outcome.image is not None:
            generation = self._catalog.image_generation
            if generation is None:
                return None
            return token_cost(
                outcome.usage, generation.price_input_per_1m, None, generation.price_output_per_1m
            )
        cost = compute_cost(prepared.entry, outcome.usage)
        transcription = self._catalog.transcription
        if outcome.audio_seconds is not None and transcription is not None:
            price = transcription.price_per_minute
            if price is not None:
                speech = Decimal(str(outcome.audio_seconds)) / 60 * price
                cost = ((cost or Decimal(0)) + speech).quantize(Decimal("0.000001"))
        return cost

    async def _succeed(self, prepared: PreparedAnswer, outcome: Outcome) -> DoneEvent:
        self._metrics.answers_in_flight.dec()
        usage = outcome.usage
        text = "".join(outcome.text)
        reasoning = "".join(outcome.reasoning)
        sources = list(outcome.sources.values())
        cost = self._cost(prepared, outcome)
        latency_ms = self._elapsed_ms(prepared)
        details: dict[str, Any] = {
            "response_text": "[picture]" if outcome.image is not None else text,
            "reasoning_text": reasoning or None,
            "sources": [s.model_dump() for s in sources] or None,
            "input_tokens": usage.input_tokens if usage else None,
            "cached_input_tokens": usage.cached_input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
            "cost_usd": cost,
            "latency_ms": latency_ms,
            "first_token_ms": outcome.first_token_ms,
        }
        if outcome.transcript is not None:
            # History keeps what was said, so later turns read it like typed text.
            details["request_text"] = outcome.transcript
        async with self._sessions() as session:
            settlement = await CreditService(session, self._clock).commit(
                prepared.reservation.message_id, details
            )
        reservation = prepared.reservation
        log.info(
            "answer_completed",
            message_id=reservation.message_id,
            kind=prepared.incoming.kind.value,
            provider=reservation.provider,
            model=reservation.model,
            latency_ms=latency_ms,
            first_token_ms=outcome.first_token_ms,
            input_tokens=details["input_tokens"],
            output_tokens=details["output_tokens"],
            cost_usd=str(cost) if cost is not None else None,
        )
        log.info(
            "provider_call",
            provider=reservation.provider,
            model=reservation.model,
            latency_ms=latency_ms,
            outcome="success",
        )
        self._metrics.answer_succeeded(
            reservation.provider,
            reservation.model,
            latency_s=latency_ms / 1000,
            ttft_s=outcome.first_token_ms / 1000 if outcome.first_token_ms is not None else None,
            input_tokens=details["input_tokens"],
            output_tokens=details["output_tokens"],
            cost_usd=cost,
        )
        image = outcome.image
        return DoneEvent(
            message_id=reservation.message_id,
            provider=reservation.provider,
            model=reservation.model,
            text=text if image is None else prepared.question,
            reasoning=reasoning or None,
            sources=sources,
            usage=UsageOut(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=usage.cached_input_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
            if usage
            else None,
            cost_usd=cost,
            latency_ms=latency_ms,
            free_messages_left=settlement.free_messages_left,
            is_vip=reservation.is_vip,
            trimmed=prepared.trimmed,
            kind=prepared.incoming.kind,
            transcript=outcome.transcript,
            document_truncated=prepared.document_truncated,
            image=ImageOut(
                media_type=image.media_type, data=base64.b64encode(image.data).decode("ascii")
            )
            if image is not None
            else None,
            credits_charged=reservation.credits if reservation.charged else 0,
        )

    async def _fail(
        self, prepared: PreparedAnswer, failure: ProviderError, first_token_ms: int | None
    ) -> ErrorEvent:
        prepared.failure = failure
        refunded, left = await self._settle_failure(prepared, failure.code, first_token_ms)
        log.warning(
            "answer_failed",
            message_id=prepared.reservation.message_id,
            kind=prepared.incoming.kind.value,
            provider=prepared.reservation.provider,
            model=prepared.reservation.model,
            error_code=failure.code,
            refunded=refunded,
        )
        log.info(
            "provider_call",
            provider=prepared.reservation.provider,
            model=prepared.reservation.model,
            latency_ms=self._elapsed_ms(prepared),
            outcome=failure.code,
        )
        self._metrics.answer_failed(prepared.reservation.provider, prepared.reservation.model)
        return ErrorEvent(
            code=failure.code, message=failure.message, refunded=refunded, free_messages_left=left
        )

    async def _settle_failure(
        self, prepared: PreparedAnswer, code: str, first_token_ms: int | None
    ) -> tuple[bool, int]:
        self._metrics.answers_in_flight.dec()
        async with self._sessions() as session:
            settlement = await CreditService(session, self._clock).refund(
                prepared.reservation.message_id,
                code,
                {"latency_ms": self._elapsed_ms(prepared), "first_token_ms": first_token_ms},
            )
        return settlement.refunded, settlement.free_messages_left


def stored_answer(message: MessageLog, free_messages_left: int, is_vip: bool) -> MessageOut:
    """An answer as it was stored, for a repeated request (a picture is not stored: no image)."""
    usage = None
    if message.input_tokens is not None and message.output_tokens is not None:
        usage = UsageOut(
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            cached_input_tokens=message.cached_input_tokens or 0,
            reasoning_tokens=message.reasoning_tokens or 0,
        )
    kind = MessageKind(message.kind)
    return MessageOut(
        message_id=message.id,
        provider=message.provider,
        model=message.model,
        text=message.response_text or "",
        reasoning=message.reasoning_text,
        sources=[SourceOut(**s) for s in message.sources or []],
        usage=usage,
        cost_usd=message.cost_usd,
        latency_ms=message.latency_ms or 0,
        free_messages_left=free_messages_left,
        is_vip=is_vip,
        trimmed=False,
        kind=kind,
        transcript=message.request_text if kind == MessageKind.VOICE else None,
        credits_charged=message.credits if message.charged else 0,
    )

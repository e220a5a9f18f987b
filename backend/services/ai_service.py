"""Answering a message: reserve a credit, call the chosen model, then commit or refund.

No database transaction or connection is held while the provider works: the reservation
and the settlement are each their own short transaction.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import Settings
from backend.database import crud
from backend.models.database import MessageLog
from backend.models.enums import MessageStatus
from backend.models.schemas import (
    CatalogOut,
    ConversationOut,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    MessageIn,
    MessageOut,
    ModelOut,
    ProgressEvent,
    ProviderOut,
    ReasoningEvent,
    SourceOut,
    SourcesEvent,
    StartEvent,
    UsageOut,
)
from backend.services.catalog import Catalog, ModelEntry
from backend.services.clock import Clock, utcnow
from backend.services.credit_service import CreditService, Reservation
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
from backend.services.providers.registry import ProviderRegistry
from backend.services.user_service import require_user
from backend.utils.exceptions import DuplicateRequest, MessageTooLong
from backend.utils.logger import get_logger

log = get_logger("backend.answers")

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


def compute_cost(entry: ModelEntry, usage: Usage | None) -> Decimal | None:
    """The provider's own figure when it gives one, else tokens times catalog prices."""
    if usage is None:
        return None
    if usage.cost_usd is not None:
        return usage.cost_usd.quantize(Decimal("0.000001"))
    if entry.price_input_per_1m is None or entry.price_output_per_1m is None:
        return None
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_price = entry.price_cached_input_per_1m
    if cached_price is None:
        cached_price = entry.price_input_per_1m
    total = (
        Decimal(usage.input_tokens - cached) * entry.price_input_per_1m
        + Decimal(cached) * cached_price
        + Decimal(usage.output_tokens) * entry.price_output_per_1m
    ) / MILLION
    return total.quantize(Decimal("0.000001"))


@dataclass
class PreparedAnswer:
    """A reserved message ready to be answered."""

    reservation: Reservation
    entry: ModelEntry
    request: ProviderRequest
    trimmed: bool
    started: float = field(default_factory=time.monotonic)
    failure: ProviderError | None = None


@dataclass
class Replay:
    """A repeated request whose answer already exists: sent again, not charged again."""

    answer: MessageOut


class ChatService:
    """The use case behind POST /api/v1/messages, and the conversation controls."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        catalog: Catalog,
        providers: ProviderRegistry,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._catalog = catalog
        self._providers = providers
        self._clock = clock

    def models(self) -> CatalogOut:
        """The menu with what is available now (a provider without a key is not)."""
        providers = []
        for key, provider in self._catalog.providers.items():
            available = self._providers.available(key)
            models = [
                ModelOut(
                    key=m.key,
                    label=m.label,
                    available=available,
                    reasoning=m.reasoning,
                    long_running=m.long_running,
                )
                for m in self._catalog.models
                if m.provider == key
            ]
            providers.append(
                ProviderOut(key=key, label=provider.label, available=available, models=models)
            )
        return CatalogOut(default_model=self._catalog.default_model, providers=providers)

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

    async def prepare(self, body: MessageIn) -> PreparedAnswer | Replay:
        """Check the message, reserve a credit and gather the history (before any provider call)."""
        limit = self._settings.max_message_chars
        if len(body.text) > limit:
            raise MessageTooLong(
                f"The message is {len(body.text)} characters; the limit is {limit}.",
                limit=limit,
                length=len(body.text),
            )
        async with self._sessions() as session:
            user = await require_user(session, body.telegram_id)
            entry = self._catalog.get(user.model) or self._catalog.default
            if not self._providers.available(entry.provider):
                raise ProviderNotConfigured(provider=entry.provider, model=entry.key)
            try:
                reservation = await CreditService(session, self._clock).reserve(
                    body.telegram_id,
                    provider=entry.provider,
                    model=entry.key,
                    api_model=entry.api_model,
                    request_text=body.text,
                    client_message_id=body.client_message_id,
                )
            except DuplicateRequest as duplicate:
                return await self._replay(session, duplicate)
            pairs = await crud.history(
                session, reservation.conversation_id, reservation.message_id, HISTORY_ROWS + 1
            )
        more_exist = len(pairs) > HISTORY_ROWS
        turns, trimmed = fit_history(
            pairs[:HISTORY_ROWS], body.text, entry.history_budget_tokens, more_exist
        )
        request = ProviderRequest(
            api_model=entry.api_model,
            instructions=self._settings.system_prompt,
            turns=turns,
            options=dict(entry.options),
            stream=bool(entry.options.get("stream", True)),
            max_output_tokens=entry.max_output_tokens,
            timeout_s=entry.timeout_s,
        )
        return PreparedAnswer(
            reservation=reservation, entry=entry, request=request, trimmed=trimmed
        )

    async def _replay(self, session: AsyncSession, duplicate: DuplicateRequest) -> Replay:
        message = duplicate.existing
        if message is None or message.status != MessageStatus.SUCCESS.value:
            raise duplicate
        trial = await crud.get_trial(session, message.user_id)
        vip = await crud.vip_expires_at(session, message.user_id, self._clock())
        left = trial.messages_left if trial else 0
        return Replay(answer=stored_answer(message, left, vip is not None))

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
        )
        text: list[str] = []
        reasoning: list[str] = []
        sources: dict[str, SourceOut] = {}
        usage: Usage | None = None
        first_token_ms: int | None = None
        adapter = self._providers.adapter(reservation.provider)
        try:
            async for event in adapter.answer(prepared.request):
                if isinstance(event, TextDelta):
                    if first_token_ms is None:
                        first_token_ms = self._elapsed_ms(prepared)
                    text.append(event.text)
                    yield DeltaEvent(text=event.text)
                elif isinstance(event, ReasoningDelta):
                    reasoning.append(event.text)
                    yield ReasoningEvent(text=event.text)
                elif isinstance(event, Sources):
                    fresh = [
                        SourceOut(title=s.title, url=s.url, date=s.date, snippet=s.snippet)
                        for s in event.items
                        if s.url not in sources
                    ]
                    sources.update((s.url, s) for s in fresh)
                    if fresh:
                        yield SourcesEvent(sources=fresh)
                elif isinstance(event, Progress):
                    yield ProgressEvent(
                        stage=event.stage, elapsed_s=time.monotonic() - prepared.started
                    )
                elif isinstance(event, Usage):
                    usage = event
            if not "".join(text).strip():
                raise ProviderError("The AI provider returned an empty answer.")
        except ProviderError as failure:
            yield await self._fail(prepared, failure, first_token_ms)
            return
        except Exception:
            log.exception("answer_crashed", message_id=reservation.message_id)
            yield await self._fail(prepared, ProviderError(), first_token_ms)
            return
        except BaseException:
            # The caller went away (client disconnect, shutdown): nobody gets this answer.
            await asyncio.shield(self._settle_failure(prepared, "cancelled", first_token_ms))
            raise
        yield await self._succeed(
            prepared,
            "".join(text),
            "".join(reasoning),
            list(sources.values()),
            usage,
            first_token_ms,
        )

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

    async def _succeed(
        self,
        prepared: PreparedAnswer,
        text: str,
        reasoning: str,
        sources: list[SourceOut],
        usage: Usage | None,
        first_token_ms: int | None,
    ) -> DoneEvent:
        cost = compute_cost(prepared.entry, usage)
        latency_ms = self._elapsed_ms(prepared)
        details: dict[str, Any] = {
            "response_text": text,
            "reasoning_text": reasoning or None,
            "sources": [s.model_dump() for s in sources] or None,
            "input_tokens": usage.input_tokens if usage else None,
            "cached_input_tokens": usage.cached_input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
            "cost_usd": cost,
            "latency_ms": latency_ms,
            "first_token_ms": first_token_ms,
        }
        async with self._sessions() as session:
            settlement = await CreditService(session, self._clock).commit(
                prepared.reservation.message_id, details
            )
        reservation = prepared.reservation
        log.info(
            "answer_completed",
            message_id=reservation.message_id,
            provider=reservation.provider,
            model=reservation.model,
            latency_ms=latency_ms,
            first_token_ms=first_token_ms,
            input_tokens=details["input_tokens"],
            output_tokens=details["output_tokens"],
            cost_usd=str(cost) if cost is not None else None,
        )
        return DoneEvent(
            message_id=reservation.message_id,
            provider=reservation.provider,
            model=reservation.model,
            text=text,
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
        )

    async def _fail(
        self, prepared: PreparedAnswer, failure: ProviderError, first_token_ms: int | None
    ) -> ErrorEvent:
        prepared.failure = failure
        refunded, left = await self._settle_failure(prepared, failure.code, first_token_ms)
        log.warning(
            "answer_failed",
            message_id=prepared.reservation.message_id,
            provider=prepared.reservation.provider,
            model=prepared.reservation.model,
            error_code=failure.code,
            refunded=refunded,
        )
        return ErrorEvent(
            code=failure.code, message=failure.message, refunded=refunded, free_messages_left=left
        )

    async def _settle_failure(
        self, prepared: PreparedAnswer, code: str, first_token_ms: int | None
    ) -> tuple[bool, int]:
        async with self._sessions() as session:
            settlement = await CreditService(session, self._clock).refund(
                prepared.reservation.message_id,
                code,
                {"latency_ms": self._elapsed_ms(prepared), "first_token_ms": first_token_ms},
            )
        return settlement.refunded, settlement.free_messages_left


def stored_answer(message: MessageLog, free_messages_left: int, is_vip: bool) -> MessageOut:
    """An answer as it was stored, for a repeated request."""
    usage = None
    if message.input_tokens is not None and message.output_tokens is not None:
        usage = UsageOut(
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            cached_input_tokens=message.cached_input_tokens or 0,
            reasoning_tokens=message.reasoning_tokens or 0,
        )
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
    )

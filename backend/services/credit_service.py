"""The free-message quota: reserve before an answer, then commit on success or refund."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.database import crud
from backend.models.database import MessageLog
from backend.models.enums import CreditKind, MessageKind, MessageStatus
from backend.models.schemas import CreditsOut, LedgerEntry, TrialOut
from backend.services.clock import Clock, utcnow
from backend.services.user_service import quota_state, require_user
from backend.utils.exceptions import (
    DuplicateRequest,
    FairUseExceeded,
    QuotaExhausted,
    RateLimited,
    ReservationClosed,
    ReservationNotFound,
    UserNotFound,
    VipRequired,
)


@dataclass(frozen=True, slots=True)
class FairUse:
    """Messages a user may open per minute, and a VIP per day; 0 is no limit."""

    per_minute: int = 0
    vip_per_day: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """A message that may be answered; `charged` is False for VIP users."""

    message_id: int
    user_id: int
    conversation_id: int
    provider: str
    model: str
    charged: bool
    free_messages_left: int
    is_vip: bool
    credits: int = 1  # free messages taken (when charged)
    # Answered (question, answer) pairs before this message, newest first, when asked for.
    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    message_id: int
    status: MessageStatus
    refunded: bool
    free_messages_left: int


class CreditService:
    """Use cases on the ledger. Each one is a single short transaction."""

    def __init__(
        self,
        session: AsyncSession,
        clock: Clock = utcnow,
        limits: FairUse | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._limits = limits or FairUse()

    async def reserve(
        self,
        telegram_id: int,
        *,
        provider: str | None = None,
        model: str | None = None,
        api_model: str | None = None,
        request_text: str | None = None,
        client_message_id: str | None = None,
        kind: MessageKind = MessageKind.TEXT,
        credits: int = 1,
        vip_only: bool = False,
        context: crud.AnswerContext | None = None,
        history_limit: int = 0,
    ) -> Reservation:
        """Open a message in the current conversation, taking `credits` free messages unless VIP.

        The free messages are taken by one conditional statement, so however many requests
        race, no more succeed than messages were left; the rest get `QuotaExhausted`. A
        repeated `client_message_id` raises `DuplicateRequest` and takes nothing. `context`,
        when the caller has already read it (`load_context`), saves reading it again.
        `vip_only` refuses (`VipRequired`) a user who is not VIP. With `history_limit`, the
        reservation carries that many answered pairs of the conversation, newest first.
        """
        if context is None:
            context = await self.load_context(telegram_id)
        user = context.user
        user_id = user.id
        is_vip = context.vip_expires_at is not None
        if vip_only and not is_vip:
            raise VipRequired(vip_available=True)
        self._check_fair_use(context.recent, is_vip)
        charged = not is_vip
        fields = crud.NewMessage(
            user_id=user_id,
            provider=provider or user.provider,
            model=model or user.model,
            api_model=api_model,
            charged=charged,
            request_text=request_text,
            client_message_id=client_message_id,
            kind=kind.value,
            credits=credits,
        )
        try:
            reserved = await crud.reserve_message(
                self._session, fields, history_limit=history_limit
            )
        except IntegrityError:
            # The same client message id won a race a moment ago: the statement failed as a
            # whole, so nothing was taken.
            await self._session.rollback()
            assert client_message_id is not None
            existing = await crud.message_by_client_id(self._session, user_id, client_message_id)
            raise DuplicateRequest(message=existing) from None
        if reserved.duplicate_id is not None:
            raise DuplicateRequest(
                message=await crud.get_message(self._session, reserved.duplicate_id)
            )
        if reserved.quota_exhausted:
            await self._session.rollback()
            raise QuotaExhausted(
                messages_limit=context.messages_limit,
                vip_available=True,
                free_messages_left=context.messages_left,
                credits_needed=credits,
            )
        await self._session.commit()
        assert reserved.message_id is not None and reserved.conversation_id is not None
        return Reservation(
            message_id=reserved.message_id,
            user_id=user_id,
            conversation_id=reserved.conversation_id,
            provider=fields.provider,
            model=fields.model,
            charged=charged,
            free_messages_left=reserved.messages_left
            if reserved.messages_left is not None
            else context.messages_left,
            is_vip=is_vip,
            credits=credits,
            history=tuple(reserved.history),
        )

    async def load_context(self, telegram_id: int) -> crud.AnswerContext:
        """The user and their allowance, as `reserve` needs them, or `UserNotFound`."""
        limits = self._limits
        context = await crud.answer_context(
            self._session,
            telegram_id,
            self._clock(),
            with_recent=bool(limits.per_minute or limits.vip_per_day),
        )
        if context is None:
            raise UserNotFound(telegram_id=telegram_id)
        return context

    def _check_fair_use(self, recent: crud.RecentMessages | None, is_vip: bool) -> None:
        """Refuse a user sending faster than the per-minute limit, or a VIP past the day's cap.

        A soft limit (counted, not reserved): requests racing in the same instant may pass
        it together; the free allowance stays the hard limit for free users.
        """
        per_minute, per_day = self._limits.per_minute, self._limits.vip_per_day if is_vip else 0
        if recent is None or (not per_minute and not per_day):
            return
        if per_minute and recent.last_minute >= per_minute:
            raise RateLimited(
                f"More than {per_minute} messages a minute; wait a moment.",
                limit=per_minute,
                retry_after_s=max(1, round(recent.minute_frees_in_s)),
            )
        if per_day and recent.last_day >= per_day:
            raise FairUseExceeded(
                f"The fair-use limit of {per_day} messages a day is reached.",
                limit=per_day,
                period="day",
                retry_after_s=max(1, round(recent.day_frees_in_s)),
            )

    async def commit(self, message_id: int, details: dict[str, Any] | None = None) -> Settlement:
        """The answer was delivered: the reserved message stays spent; `details` are stored."""
        left = await crud.settle_success(self._session, message_id, details)
        if left is None:
            await self._raise_unsettleable(message_id)
        assert left is not None
        await self._session.commit()
        return Settlement(
            message_id=message_id,
            status=MessageStatus.SUCCESS,
            refunded=False,
            free_messages_left=left,
        )

    async def refund(
        self, message_id: int, error_code: str, details: dict[str, Any] | None = None
    ) -> Settlement:
        """The answer failed: give the reserved message back, exactly once."""
        refunded = await crud.settle_failure(self._session, message_id, error_code, details)
        if refunded is None:
            await self._raise_unsettleable(message_id)
        assert refunded is not None
        await self._session.commit()
        return Settlement(
            message_id=message_id,
            status=MessageStatus.FAILED,
            refunded=refunded.charged,
            free_messages_left=refunded.messages_left,
        )

    async def refund_abandoned(self, older_than: timedelta, limit: int = 100) -> int:
        """Refund reservations whose answer never finished (its process died); how many.

        Safe with several replicas sweeping at once: rows are locked with SKIP LOCKED and
        each is settled by the same conditional UPDATE as an ordinary refund.
        """
        ids = await crud.stale_pending_ids(self._session, self._clock() - older_than, limit)
        for message_id in ids:
            message = await crud.settle_message(
                self._session, message_id, MessageStatus.FAILED, error_code="abandoned"
            )
            if message is not None and message.charged:
                await self._give_back(message, "abandoned")
        await self._session.commit()
        return len(ids)

    async def _give_back(self, message: MessageLog, reason: str) -> int:
        """Return what a failed message took, with its ledger entry; the balance after."""
        left = await crud.give_free_messages(self._session, message.user_id, message.credits)
        await crud.add_ledger_entry(
            self._session,
            user_id=message.user_id,
            kind=CreditKind.REFUND,
            delta=message.credits,
            balance_after=left,
            message_id=message.id,
            reason=reason,
        )
        return left

    async def _raise_unsettleable(self, message_id: int) -> None:
        await self._session.rollback()
        if await crud.get_message(self._session, message_id) is None:
            raise ReservationNotFound(message_id=message_id)
        raise ReservationClosed(message_id=message_id)

    async def credits(self, telegram_id: int, limit: int = 20) -> CreditsOut:
        """The balance and the newest ledger entries."""
        user = await require_user(self._session, telegram_id)
        quota = await quota_state(self._session, user, self._clock())
        entries = await crud.ledger_entries(self._session, user.id, limit)
        # The newest entry's balance is the balance as of the entries shown, even when a
        # change lands between the two reads.
        left = entries[0].balance_after if entries else quota.messages_left
        return CreditsOut(
            telegram_id=user.telegram_id,
            is_vip=quota.is_vip,
            vip_expires_at=quota.vip_expires_at,
            free_messages_left=left,
            free_messages_limit=quota.messages_limit,
            entries=[LedgerEntry.model_validate(entry) for entry in entries],
        )

    async def trial(self, telegram_id: int) -> TrialOut:
        """The free allowance: limit, left, used."""
        user = await require_user(self._session, telegram_id)
        quota = await quota_state(self._session, user, self._clock())
        return TrialOut(
            telegram_id=user.telegram_id,
            messages_limit=quota.messages_limit,
            messages_left=quota.messages_left,
            messages_used=max(quota.messages_limit - quota.messages_left, 0),
            exhausted=quota.messages_left == 0,
            is_vip=quota.is_vip,
        )

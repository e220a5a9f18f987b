"""Operators' use cases: the figures, a user's card, VIP by hand, blocking, broadcasts.

Every change an operator makes is written to `admin_actions` in the same transaction.
A broadcast walks its recipients in telegram_id order: a runner asks for the next batch after
the cursor (taking a lease on it), sends, and reports progress, which moves the cursor only
forward, so a replayed report counts nothing twice and a restarted runner resumes after it.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import Settings
from backend.database import crud
from backend.models.database import (
    Broadcast,
    MessageLog,
    Subscription,
    Transaction,
    User,
)
from backend.models.enums import (
    AdminActionKind,
    BroadcastAudience,
    BroadcastStatus,
    MessageStatus,
    SubscriptionStatus,
    TransactionStatus,
)
from backend.models.schemas import (
    MAX_BIGINT,
    AdminPaymentOut,
    AdminStats,
    AdminUserCard,
    AudienceOut,
    BatchIn,
    BatchOut,
    BroadcastIn,
    BroadcastOut,
    ErrorRateOut,
    ModelUsageOut,
    ProgressIn,
    RevenueOut,
)
from backend.services.clock import Clock, utcnow
from backend.services.user_service import quota_state, require_user
from backend.utils.exceptions import BroadcastLeased, BroadcastNotFound, UserNotFound
from backend.utils.logger import get_logger

log = get_logger("backend.admin")

CARD_PAYMENTS = 10


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar day holding `now`, as [start, end)."""
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `now`, as [start, end)."""
    start = day_bounds(now)[0].replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _within(column: Any, bounds: tuple[datetime, datetime]) -> ColumnElement[bool]:
    return and_(column >= bounds[0], column < bounds[1])


def _is_vip(now: datetime) -> ColumnElement[bool]:
    return exists().where(
        Subscription.user_id == User.id,
        Subscription.status.in_(crud.VIP_STATES),
        Subscription.expires_at > now,
    )


def audience_filter(audience: BroadcastAudience, now: datetime) -> list[ColumnElement[bool]]:
    """Who a broadcast reaches: users not blocked by us and not blocking us, by VIP state."""
    conditions: list[ColumnElement[bool]] = [
        User.blocked_at.is_(None),
        User.bot_blocked_at.is_(None),
    ]
    if audience == BroadcastAudience.VIP:
        conditions.append(_is_vip(now))
    elif audience == BroadcastAudience.FREE:
        conditions.append(~_is_vip(now))
    return conditions


def broadcast_out(broadcast: Broadcast) -> BroadcastOut:
    return BroadcastOut.model_validate(broadcast)


class AdminService:
    """Use cases behind /api/v1/admin; each one commits once, at its end."""

    def __init__(self, session: AsyncSession, settings: Settings, clock: Clock = utcnow) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock

    # The figures

    async def stats(self) -> AdminStats:
        """Users, VIP, conversion, today's messages and errors, cost and revenue."""
        now = self._clock()
        today, month = day_bounds(now), month_bounds(now)
        session = self._session
        users_total, users_new = (
            await session.execute(
                select(func.count(), func.count().filter(_within(User.created_at, today)))
            )
        ).one()
        vip_active = await session.scalar(
            select(func.count()).where(
                Subscription.status.in_(crud.VIP_STATES), Subscription.expires_at > now
            )
        )
        paying = await session.scalar(
            select(func.count(func.distinct(Transaction.user_id))).where(
                Transaction.status == TransactionStatus.PAID.value
            )
        )
        failed = MessageLog.status == MessageStatus.FAILED.value
        usage = await session.execute(
            select(
                MessageLog.provider,
                MessageLog.model,
                func.count(),
                func.count().filter(failed),
            )
            .where(_within(MessageLog.created_at, today))
            .group_by(MessageLog.provider, MessageLog.model)
            .order_by(MessageLog.provider, MessageLog.model)
        )
        errors = await session.execute(
            select(
                MessageLog.provider,
                func.count().filter(MessageLog.status != MessageStatus.PENDING.value),
                func.count().filter(failed),
            )
            .where(_within(MessageLog.created_at, today))
            .group_by(MessageLog.provider)
            .order_by(MessageLog.provider)
        )
        cost_today, cost_month = (
            await session.execute(
                select(
                    func.coalesce(
                        func.sum(MessageLog.cost_usd).filter(_within(MessageLog.created_at, today)),
                        0,
                    ),
                    func.coalesce(func.sum(MessageLog.cost_usd), 0),
                ).where(_within(MessageLog.created_at, month))
            )
        ).one()
        revenue: dict[str, int] = defaultdict(int)
        paid = await session.execute(
            select(Transaction.currency, func.sum(Transaction.amount))
            .where(_within(Transaction.paid_at, month))
            .group_by(Transaction.currency)
        )
        for currency, amount in paid:
            revenue[currency] += int(amount)
        refunds = 0
        refunded = await session.execute(
            select(Transaction.currency, func.sum(Transaction.amount), func.count())
            .where(_within(Transaction.refunded_at, month))
            .group_by(Transaction.currency)
        )
        for currency, amount, count in refunded:
            revenue[currency] -= int(amount)
            refunds += int(count)
        total = int(users_total)
        return AdminStats(
            users_total=total,
            users_new_today=int(users_new),
            vip_active=int(vip_active or 0),
            paying_users=int(paying or 0),
            conversion=round(int(paying or 0) / total, 4) if total else 0.0,
            messages_today=[
                ModelUsageOut(provider=p, model=m, count=int(c), failed=int(f))
                for p, m, c, f in usage
            ],
            cost_today_usd=Decimal(cost_today or 0),
            cost_month_usd=Decimal(cost_month or 0),
            revenue_month=[
                RevenueOut(currency=currency, amount=amount)
                for currency, amount in sorted(revenue.items())
            ],
            refunds_month=refunds,
            error_rate=[
                ErrorRateOut(
                    provider=p, total=int(t), failed=int(f), rate=round(int(f) / int(t), 4)
                )
                for p, t, f in errors
                if t
            ],
        )

    # Users

    async def lookup(self, query: str) -> AdminUserCard:
        """A user by Telegram id, or by username with or without the @."""
        query = query.strip()
        if query.isascii() and query.isdigit():
            telegram_id = int(query)
            if telegram_id > MAX_BIGINT:
                raise UserNotFound(telegram_id=query)
            return await self.card(telegram_id)
        username = query.removeprefix("@")
        telegram_id_found = await self._session.scalar(
            select(User.telegram_id)
            .where(func.lower(User.username) == username.lower())
            .order_by(User.last_seen_at.desc())
            .limit(1)
        )
        if telegram_id_found is None:
            raise UserNotFound(username=username)
        return await self.card(int(telegram_id_found))

    async def card(self, telegram_id: int) -> AdminUserCard:
        """Who the user is, their VIP, usage, cost and newest payments."""
        user = await self._session.scalar(
            select(User)
            .where(User.telegram_id == telegram_id)
            .execution_options(populate_existing=True)
        )
        if user is None:
            raise UserNotFound(telegram_id=telegram_id)
        quota = await quota_state(self._session, user, self._clock())
        auto_renew = await self._session.scalar(
            select(Subscription.auto_renew).where(Subscription.user_id == user.id)
        )
        answers, cost = (
            await self._session.execute(
                select(func.count(), func.coalesce(func.sum(MessageLog.cost_usd), 0)).where(
                    MessageLog.user_id == user.id,
                    MessageLog.status == MessageStatus.SUCCESS.value,
                )
            )
        ).one()
        payments = await self._session.scalars(
            select(Transaction)
            .where(
                Transaction.user_id == user.id,
                Transaction.status != TransactionStatus.PENDING.value,
            )
            .order_by(func.coalesce(Transaction.paid_at, Transaction.created_at).desc())
            .limit(CARD_PAYMENTS)
        )
        return AdminUserCard(
            telegram_id=user.telegram_id,
            username=user.username,
            first_name=user.first_name,
            language=user.language,
            created_at=user.created_at,
            last_seen_at=user.last_seen_at,
            blocked=user.blocked_at is not None,
            bot_blocked=user.bot_blocked_at is not None,
            vip_until=quota.vip_expires_at,
            auto_renew=bool(auto_renew) and quota.is_vip,
            free_messages_left=quota.messages_left,
            free_messages_limit=quota.messages_limit,
            messages_used=max(quota.messages_limit - quota.messages_left, 0),
            messages_total=int(answers),
            cost_total_usd=Decimal(cost or 0),
            payments=[
                AdminPaymentOut(
                    charge_id=t.telegram_payment_charge_id,
                    amount=t.amount,
                    currency=t.currency,
                    status=t.status,
                    paid_at=t.paid_at,
                    refunded_at=t.refunded_at,
                )
                for t in payments
            ],
        )

    async def grant_vip(self, admin_id: int, telegram_id: int, days: int) -> AdminUserCard:
        """Add `days` of VIP from max(now, current expiry)."""
        user = await require_user(self._session, telegram_id)
        expires_at = await crud.extend_subscription(
            self._session, user.id, timedelta(days=days), self._clock()
        )
        self._audit(
            admin_id,
            AdminActionKind.GRANT_VIP,
            telegram_id,
            {"days": days, "vip_until": expires_at.isoformat()},
        )
        return await self._done(admin_id, AdminActionKind.GRANT_VIP, telegram_id)

    async def revoke_vip(self, admin_id: int, telegram_id: int) -> AdminUserCard:
        """End VIP now and stop renewal; the card names a Stars subscription to cancel."""
        user = await require_user(self._session, telegram_id)
        now = self._clock()
        # The values before the change, in the same statement that changes them.
        before = (
            select(
                Subscription.id,
                Subscription.auto_renew,
                Subscription.telegram_charge_id,
                Subscription.expires_at,
            )
            .where(Subscription.user_id == user.id)
            .with_for_update()
            .cte("before")
        )
        row = (
            await self._session.execute(
                update(Subscription)
                .where(Subscription.id == before.c.id)
                .values(
                    expires_at=func.least(Subscription.expires_at, now),
                    status=SubscriptionStatus.EXPIRED.value,
                    auto_renew=False,
                    updated_at=now,
                )
                .returning(before.c.auto_renew, before.c.telegram_charge_id, before.c.expires_at)
                .execution_options(synchronize_session=False)
            )
        ).first()
        cancel = row[1] if row is not None and row[0] and row[1] else None
        was_vip_until = row[2] if row is not None and row[2] > now else None
        self._audit(
            admin_id,
            AdminActionKind.REVOKE_VIP,
            telegram_id,
            {
                "vip_until": was_vip_until.isoformat() if was_vip_until else None,
                "stars_subscription": cancel,
            },
        )
        card = await self._done(admin_id, AdminActionKind.REVOKE_VIP, telegram_id)
        return card.model_copy(update={"cancel_stars_charge_id": cancel})

    async def set_blocked(self, admin_id: int, telegram_id: int, blocked: bool) -> AdminUserCard:
        """Block (no answers, no payments) or unblock a user."""
        now = self._clock()
        value: Any = func.coalesce(User.blocked_at, now) if blocked else null()
        changed = await self._session.execute(
            update(User)
            .where(User.telegram_id == telegram_id)
            .values(blocked_at=value, updated_at=now)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        )
        if changed.first() is None:
            raise UserNotFound(telegram_id=telegram_id)
        action = AdminActionKind.BLOCK if blocked else AdminActionKind.UNBLOCK
        self._audit(admin_id, action, telegram_id, None)
        return await self._done(admin_id, action, telegram_id)

    def _audit(
        self,
        admin_id: int,
        action: AdminActionKind,
        target: int | None,
        detail: dict[str, object] | None,
    ) -> None:
        crud.audit(self._session, admin_id, action, target, detail, self._clock())

    async def _done(
        self, admin_id: int, action: AdminActionKind, telegram_id: int
    ) -> AdminUserCard:
        await self._session.flush()
        card = await self.card(telegram_id)
        await self._session.commit()
        log.info("admin_action", action=action.value, admin=admin_id, target=telegram_id)
        return card

    # Broadcasts

    async def audience(self, audience: BroadcastAudience) -> AudienceOut:
        """How many users a broadcast to `audience` would reach now."""
        return AudienceOut(audience=audience, count=await self._count(audience))

    async def _count(self, audience: BroadcastAudience) -> int:
        count = await self._session.scalar(
            select(func.count()).where(*audience_filter(audience, self._clock()))
        )
        return int(count or 0)

    async def create_broadcast(self, admin_id: int, body: BroadcastIn) -> BroadcastOut:
        """A running broadcast of the admin's message, its recipients counted now."""
        now = self._clock()
        broadcast = Broadcast(
            admin_telegram_id=admin_id,
            audience=body.audience.value,
            from_chat_id=body.from_chat_id,
            message_id=body.message_id,
            status=BroadcastStatus.RUNNING.value,
            cursor=0,
            total=await self._count(body.audience),
            delivered=0,
            blocked=0,
            failed=0,
            created_at=now,
        )
        self._session.add(broadcast)
        await self._session.flush()
        self._audit(
            admin_id,
            AdminActionKind.BROADCAST,
            None,
            {
                "broadcast_id": broadcast.id,
                "audience": body.audience.value,
                "total": broadcast.total,
            },
        )
        await self._session.flush()
        result = broadcast_out(broadcast)
        await self._session.commit()
        log.info("broadcast_created", broadcast_id=broadcast.id, total=broadcast.total)
        return result

    async def broadcasts(self, status: BroadcastStatus | None) -> list[BroadcastOut]:
        """Broadcasts, oldest first, optionally of one status."""
        query = select(Broadcast).order_by(Broadcast.id)
        if status is not None:
            query = query.where(Broadcast.status == status.value)
        return [broadcast_out(b) for b in await self._session.scalars(query)]

    async def _get(self, broadcast_id: int) -> Broadcast:
        broadcast = await self._session.scalar(
            select(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .execution_options(populate_existing=True)
        )
        if broadcast is None:
            raise BroadcastNotFound(broadcast_id=broadcast_id)
        return broadcast

    async def batch(self, broadcast_id: int, body: BatchIn) -> BatchOut:
        """The next recipients after the cursor, leased to the caller for `lease_seconds`.

        The lease is taken only when free or expired, so a second runner is refused
        (`BroadcastLeased`) while the first sends; progress up to the batch's last recipient
        gives it back. The cursor does not move here.
        """
        now = self._clock()
        claimed = (
            await self._session.execute(
                update(Broadcast)
                .where(
                    Broadcast.id == broadcast_id,
                    Broadcast.status == BroadcastStatus.RUNNING.value,
                    (Broadcast.lease_until.is_(None)) | (Broadcast.lease_until <= now),
                )
                .values(lease_until=now + timedelta(seconds=body.lease_seconds))
                .returning(Broadcast)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if claimed is None:
            # Nothing changed: not running (nothing to send), or leased to another runner.
            broadcast = await self._get(broadcast_id)
            if broadcast.status == BroadcastStatus.RUNNING.value and broadcast.lease_until:
                raise BroadcastLeased(
                    retry_after_s=max(round((broadcast.lease_until - now).total_seconds()), 1)
                )
            return BatchOut(broadcast=broadcast_out(broadcast), recipients=[])
        recipients = list(
            await self._session.scalars(
                select(User.telegram_id)
                .where(
                    User.telegram_id > claimed.cursor,
                    *audience_filter(BroadcastAudience(claimed.audience), now),
                )
                .order_by(User.telegram_id)
                .limit(body.limit)
            )
        )
        claimed.lease_cursor = recipients[-1] if recipients else None
        if not recipients:
            claimed.lease_until = None
        await self._session.flush()
        result = BatchOut(broadcast=broadcast_out(claimed), recipients=recipients)
        await self._session.commit()
        return result

    async def progress(self, broadcast_id: int, body: ProgressIn) -> BroadcastOut:
        """Add what was sent up to `cursor`, once: a report not past the cursor changes nothing."""
        now = self._clock()
        leased_done = and_(
            Broadcast.lease_cursor.is_not(None), Broadcast.lease_cursor <= body.cursor
        )
        applied = (
            await self._session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.cursor < body.cursor)
                .values(
                    cursor=body.cursor,
                    delivered=Broadcast.delivered + body.delivered,
                    blocked=Broadcast.blocked + body.blocked,
                    failed=Broadcast.failed + body.failed,
                    lease_until=case((leased_done, null()), else_=Broadcast.lease_until),
                    lease_cursor=case((leased_done, null()), else_=Broadcast.lease_cursor),
                )
                .returning(Broadcast)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if applied is None:  # a replay, or a report behind the cursor: nothing to add
            return broadcast_out(await self._get(broadcast_id))
        if body.blocked_ids:
            await self._session.execute(
                update(User)
                .where(User.telegram_id.in_(body.blocked_ids), User.bot_blocked_at.is_(None))
                .values(bot_blocked_at=now)
                .execution_options(synchronize_session=False)
            )
        result = broadcast_out(applied)
        await self._session.commit()
        return result

    async def finish(self, broadcast_id: int) -> BroadcastOut:
        """A running broadcast is done (a canceled one stays canceled)."""
        return await self._end(broadcast_id, BroadcastStatus.DONE, None)

    async def cancel(self, admin_id: int, broadcast_id: int) -> BroadcastOut:
        """Stop a running broadcast: its next batch is empty."""
        return await self._end(broadcast_id, BroadcastStatus.CANCELED, admin_id)

    async def _end(
        self, broadcast_id: int, status: BroadcastStatus, admin_id: int | None
    ) -> BroadcastOut:
        now = self._clock()
        ended = (
            await self._session.execute(
                update(Broadcast)
                .where(
                    Broadcast.id == broadcast_id,
                    Broadcast.status == BroadcastStatus.RUNNING.value,
                )
                .values(status=status.value, finished_at=now, lease_until=None, lease_cursor=None)
                .returning(Broadcast)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if ended is None:  # ended before: as it is
            return broadcast_out(await self._get(broadcast_id))
        if admin_id is not None:
            self._audit(
                admin_id, AdminActionKind.BROADCAST_CANCEL, None, {"broadcast_id": broadcast_id}
            )
            await self._session.flush()
        result = broadcast_out(ended)
        await self._session.commit()
        log.info(
            "broadcast_ended",
            broadcast_id=broadcast_id,
            status=status.value,
            delivered=ended.delivered,
            blocked=ended.blocked,
            failed=ended.failed,
        )
        return result

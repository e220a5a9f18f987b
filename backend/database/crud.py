"""Data access: single statements the services compose. Helpers flush, never commit."""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.models.database import (
    AdminAction,
    Conversation,
    CreditHistory,
    MessageLog,
    Subscription,
    Trial,
    UpdateClaim,
    User,
)
from backend.models.enums import (
    AdminActionKind,
    CreditKind,
    MessageKind,
    MessageStatus,
    SubscriptionStatus,
)

# Subscriptions in these states still give VIP until `expires_at`.
VIP_STATES = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.CANCELED.value)


@dataclass(frozen=True, slots=True)
class NewUserFields:
    telegram_id: int
    username: str | None
    first_name: str | None
    last_name: str | None
    language_code: str | None
    language: str
    provider: str
    model: str
    mode: str = "general"


async def get_user(session: AsyncSession, telegram_id: int) -> User | None:
    return await session.scalar(select(User).where(User.telegram_id == telegram_id))


def _upsert_user() -> Any:
    """Insert the user or refresh their Telegram profile (no RETURNING yet); bound by name.

    The chosen language and model are kept on refresh: they are the user's choice, not
    Telegram's.
    """
    stmt = insert(User).values(
        {name: bindparam(f"u_{name}") for name in _USER_FIELDS},
    )
    return stmt.on_conflict_do_update(
        index_elements=[User.telegram_id],
        set_={
            "username": stmt.excluded.username,
            "first_name": stmt.excluded.first_name,
            "last_name": stmt.excluded.last_name,
            "language_code": stmt.excluded.language_code,
            "updated_at": func.now(),
            "last_seen_at": func.now(),
            # They are talking to the bot again, so they no longer block it.
            "bot_blocked_at": None,
        },
    )


_USER_FIELDS = tuple(NewUserFields.__dataclass_fields__)
# xmax is 0 only on a freshly inserted row version.
_INSERTED = literal_column("(xmax = 0)", type_=Boolean).label("inserted")


@dataclass(frozen=True, slots=True)
class Registered:
    """The outcome of `register_user`: the user, whether new, their allowance and VIP expiry."""

    user: User
    created: bool
    messages_limit: int
    messages_left: int
    vip_expires_at: datetime | None


@functools.cache
def _registration() -> Any:
    """The statement of `register_user`, built once (building one costs more than running it)."""
    upserted = _upsert_user().returning(*User.__table__.c, _INSERTED).cte("upserted")
    limit = bindparam("free_messages", type_=Integer)
    given = (
        insert(Trial)
        .from_select(
            ["user_id", "messages_limit", "messages_left"],
            select(upserted.c.id, limit, limit).where(upserted.c.inserted),
        )
        .returning(Trial.messages_limit, Trial.messages_left)
        .cte("given")
    )
    granted = insert(CreditHistory).from_select(
        ["user_id", "kind", "delta", "balance_after", "reason"],
        select(
            upserted.c.id,
            literal(CreditKind.GRANT.value, String),
            limit,
            limit,
            literal("free allowance", String),
        ).where(upserted.c.inserted, limit > 0),
    )
    person = aliased(User, upserted)
    return (
        select(
            person,
            upserted.c.inserted,
            func.coalesce(given.c.messages_limit, Trial.messages_limit),
            func.coalesce(given.c.messages_left, Trial.messages_left),
            _vip_until(upserted.c.id),
        )
        .select_from(upserted)
        .outerjoin(given, true())
        .outerjoin(Trial, Trial.user_id == upserted.c.id)
        .add_cte(granted.cte("granted"))
        .execution_options(populate_existing=True)
    )


def _vip_until(user_id: Any) -> Any:
    """When VIP ends for `user_id` if they are VIP at the bound `now`: a scalar subquery."""
    return (
        select(Subscription.expires_at)
        .where(
            Subscription.user_id == user_id,
            Subscription.status.in_(VIP_STATES),
            Subscription.expires_at > bindparam("now", type_=DateTime(timezone=True)),
        )
        .scalar_subquery()
    )


async def register_user(
    session: AsyncSession, fields: NewUserFields, *, free_messages: int, now: datetime
) -> Registered:
    """Register on first contact (with `free_messages` and its ledger entry) or refresh: one
    statement.

    Being one statement it is atomic and needs no transaction around it, and two first
    contacts racing still create one user with one allowance: the loser of the race takes
    the conflict path, which grants nothing. Its snapshot predates the winner's commit, so it
    cannot see the winner's allowance; it reads it again then (only in that race).
    """
    values = {f"u_{name}": getattr(fields, name) for name in _USER_FIELDS}
    result = await session.execute(
        _registration(), {**values, "free_messages": free_messages, "now": now}
    )
    user, created, messages_limit, messages_left, vip_expires_at = result.one()
    if messages_limit is None:  # registered a moment ago by a racing request
        trial = await session.get(Trial, user.id, populate_existing=True)
        messages_limit = trial.messages_limit if trial else 0
        messages_left = trial.messages_left if trial else 0
    return Registered(user, bool(created), int(messages_limit), int(messages_left), vip_expires_at)


async def get_trial(session: AsyncSession, user_id: int) -> Trial | None:
    return await session.get(Trial, user_id)


async def give_free_messages(session: AsyncSession, user_id: int, count: int) -> int:
    """Add `count` free messages (negative removes, never below zero); the balance after."""
    result = await session.execute(
        update(Trial)
        .where(Trial.user_id == user_id)
        .values(messages_left=func.greatest(Trial.messages_left + count, 0), updated_at=func.now())
        .returning(Trial.messages_left)
    )
    return result.scalar_one()


async def add_ledger_entry(
    session: AsyncSession,
    *,
    user_id: int,
    kind: CreditKind,
    delta: int,
    balance_after: int,
    message_id: int | None = None,
    reason: str | None = None,
) -> CreditHistory:
    entry = CreditHistory(
        user_id=user_id,
        kind=kind.value,
        delta=delta,
        balance_after=balance_after,
        message_id=message_id,
        reason=reason,
    )
    session.add(entry)
    await session.flush()
    return entry


async def ledger_entries(session: AsyncSession, user_id: int, limit: int) -> list[CreditHistory]:
    """The newest `limit` ledger entries, newest first."""
    rows = await session.scalars(
        select(CreditHistory)
        .where(CreditHistory.user_id == user_id)
        .order_by(CreditHistory.id.desc())
        .limit(limit)
    )
    return list(rows)


async def vip_expires_at(session: AsyncSession, user_id: int, now: datetime) -> datetime | None:
    """When the user's VIP ends, if they are VIP at `now`."""
    return await session.scalar(select(_vip_until(literal(user_id, BigInteger))), {"now": now})


async def extend_subscription(
    session: AsyncSession, user_id: int, period: timedelta, now: datetime
) -> datetime:
    """Extend VIP by `period` from max(now, current expiry) in one statement; the new expiry."""
    stmt = insert(Subscription).values(
        user_id=user_id, status=SubscriptionStatus.ACTIVE.value, expires_at=now + period
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Subscription.user_id],
        set_={
            "expires_at": func.greatest(Subscription.expires_at, now) + period,
            "status": SubscriptionStatus.ACTIVE.value,
            "updated_at": func.now(),
        },
    )
    result = await session.execute(stmt.returning(Subscription.expires_at))
    return result.scalar_one()


async def revoke_subscription_time(
    session: AsyncSession, user_id: int, period: timedelta, now: datetime
) -> None:
    """Take back `period` of VIP (a refunded payment); renewal stops."""
    remaining = func.greatest(Subscription.expires_at - period, now)
    await session.execute(
        update(Subscription)
        .where(Subscription.user_id == user_id)
        .values(
            expires_at=remaining,
            auto_renew=False,
            status=case(
                (remaining <= now, SubscriptionStatus.REFUNDED.value),
                else_=Subscription.status,
            ),
            updated_at=func.now(),
        )
    )


async def new_conversation(session: AsyncSession, user_id: int) -> Conversation:
    conversation = Conversation(user_id=user_id)
    session.add(conversation)
    await session.flush()
    return conversation


@dataclass(frozen=True, slots=True)
class NewMessage:
    user_id: int
    provider: str
    model: str
    charged: bool
    api_model: str | None = None
    request_text: str | None = None
    client_message_id: str | None = None
    kind: str = "text"
    credits: int = 1


async def message_by_client_id(
    session: AsyncSession, user_id: int, client_message_id: str
) -> MessageLog | None:
    return await session.scalar(
        select(MessageLog).where(
            MessageLog.user_id == user_id, MessageLog.client_message_id == client_message_id
        )
    )


async def settle_message(
    session: AsyncSession,
    message_id: int,
    status: MessageStatus,
    *,
    error_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> MessageLog | None:
    """Move a pending message to its final status; None if it was not pending.

    The status check is in the statement itself, so a message is settled exactly once even
    when a refund and a commit race.
    """
    result = await session.execute(
        update(MessageLog)
        .where(MessageLog.id == message_id, MessageLog.status == MessageStatus.PENDING.value)
        .values(
            status=status.value, error_code=error_code, completed_at=func.now(), **(details or {})
        )
        .returning(MessageLog)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def stale_pending_ids(session: AsyncSession, before: datetime, limit: int) -> list[int]:
    """Pending messages opened before `before`, locked for this transaction (others skip them)."""
    rows = await session.scalars(
        select(MessageLog.id)
        .where(MessageLog.status == MessageStatus.PENDING.value, MessageLog.created_at < before)
        .order_by(MessageLog.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


async def get_message(session: AsyncSession, message_id: int) -> MessageLog | None:
    return await session.get(MessageLog, message_id)


async def claim_update(session: AsyncSession, update_id: int) -> bool:
    """Record that an update is being handled; False when it was claimed before."""
    result = await session.execute(
        insert(UpdateClaim)
        .values(update_id=update_id)
        .on_conflict_do_nothing(index_elements=[UpdateClaim.update_id])
        .returning(UpdateClaim.update_id)
    )
    return result.scalar_one_or_none() is not None


async def purge_update_claims(session: AsyncSession, older_than: timedelta) -> int:
    """Forget claims older than Telegram would ever redeliver; how many."""
    result = await session.execute(
        delete(UpdateClaim).where(UpdateClaim.claimed_at < func.now() - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


_ERASED_TEXTS = {
    "request_text": None,
    "response_text": None,
    "reasoning_text": None,
    "sources": None,
}


async def erase_message_texts(session: AsyncSession, user_id: int) -> int:
    """Erase what a user's settled messages said (usage, cost and charges stay); how many."""
    result = await session.execute(
        update(MessageLog)
        .where(
            MessageLog.user_id == user_id,
            MessageLog.status != MessageStatus.PENDING.value,
            (MessageLog.request_text.is_not(None)) | (MessageLog.response_text.is_not(None)),
        )
        .values(**_ERASED_TEXTS)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def erase_texts_older_than(session: AsyncSession, age: timedelta, limit: int) -> int:
    """Erase the texts of up to `limit` settled messages older than `age`; how many."""
    old = (
        select(MessageLog.id)
        .where(
            MessageLog.created_at < func.now() - age,
            MessageLog.status != MessageStatus.PENDING.value,
            (MessageLog.request_text.is_not(None)) | (MessageLog.response_text.is_not(None)),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        update(MessageLog).where(MessageLog.id.in_(old)).values(**_ERASED_TEXTS)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RecentMessages:
    last_minute: int
    last_day: int
    minute_frees_in_s: float  # until the oldest of the last minute leaves the window
    day_frees_in_s: float


@dataclass(frozen=True, slots=True)
class AnswerContext:
    """What deciding on an answer needs about its user, read in one statement."""

    user: User
    messages_limit: int
    messages_left: int
    vip_expires_at: datetime | None
    recent: RecentMessages | None  # only when asked for (fair-use limits are on)


def _recent_counts(user_id: Any) -> Any:
    """Messages the user opened in the last minute and day, and when each window frees up."""
    minute, day = text("interval '1 minute'"), text("interval '1 day'")
    return select(
        func.count().filter(MessageLog.created_at > func.now() - minute).label("last_minute"),
        func.count().label("last_day"),
        func.coalesce(
            func.extract(
                "epoch",
                func.min(MessageLog.created_at).filter(MessageLog.created_at > func.now() - minute)
                + minute
                - func.now(),
            ),
            0,
        ).label("minute_frees_in_s"),
        func.coalesce(
            func.extract("epoch", func.min(MessageLog.created_at) + day - func.now()), 0
        ).label("day_frees_in_s"),
    ).where(MessageLog.user_id == user_id, MessageLog.created_at > func.now() - day)


@functools.cache
def _answer_context(with_recent: bool) -> Any:
    columns: list[Any] = [User, Trial.messages_limit, Trial.messages_left, _vip_until(User.id)]
    stmt = select(*columns).outerjoin(Trial, Trial.user_id == User.id)
    if with_recent:
        recent = _recent_counts(User.id).lateral("recent")
        stmt = stmt.add_columns(*recent.c).join(recent, true())
    return stmt.where(User.telegram_id == bindparam("telegram_id", type_=BigInteger))


async def answer_context(
    session: AsyncSession, telegram_id: int, now: datetime, *, with_recent: bool
) -> AnswerContext | None:
    """The user, their allowance, VIP expiry and (optionally) recent counts; None if unknown."""
    stmt = _answer_context(with_recent)
    row = (await session.execute(stmt, {"telegram_id": telegram_id, "now": now})).one_or_none()
    if row is None:
        return None
    return AnswerContext(
        user=row[0],
        messages_limit=row[1] or 0,
        messages_left=row[2] or 0,
        vip_expires_at=row[3],
        recent=RecentMessages(int(row[4]), int(row[5]), float(row[6]), float(row[7]))
        if with_recent
        else None,
    )


@dataclass(frozen=True, slots=True)
class Reserved:
    """The outcome of `reserve_message`: exactly one of the three cases holds."""

    message_id: int | None  # opened (and charged, when asked to charge)
    conversation_id: int | None
    messages_left: int | None  # the balance after the charge
    duplicate_id: int | None  # a message with this client id exists; nothing was done
    history: list[tuple[str, str]]  # answered pairs of the conversation, newest first

    @property
    def quota_exhausted(self) -> bool:
        return self.message_id is None and self.duplicate_id is None


@functools.cache
def _reservation(with_client_id: bool, charged: bool) -> Any:
    """The statement of `reserve_message` for its shape, built once; values bound as r_*.

    (No bound name is a column's: an UPDATE would take such a parameter as a SET clause.)
    """
    uid = bindparam("r_user_id", type_=BigInteger)
    credits = bindparam("r_credits", type_=Integer)
    client_id = bindparam("r_client_message_id", type_=String)
    # Without a client id (API callers) there is nothing to be a duplicate of.
    existing = (
        select(MessageLog.id)
        .where(MessageLog.user_id == uid, MessageLog.client_message_id == client_id)
        .cte("existing")
        if with_client_id
        else None
    )
    no_duplicate = ~exists(existing.select()) if existing is not None else true()
    newest = (
        select(func.max(Conversation.id).label("id"))
        .where(Conversation.user_id == uid)
        .cte("newest")
    )
    started = (
        insert(Conversation)
        .from_select(["user_id"], select(uid).select_from(newest).where(newest.c.id.is_(None)))
        .returning(Conversation.id)
        .cte("started")
    )
    may_open = [no_duplicate]
    taken = None
    if charged:
        taken = (
            update(Trial)
            .where(Trial.user_id == uid, Trial.messages_left >= credits, no_duplicate)
            .values(messages_left=Trial.messages_left - credits, updated_at=func.now())
            .returning(Trial.messages_left)
            .cte("taken")
        )
        may_open.append(exists(taken.select()))
    conversation = func.coalesce(
        select(newest.c.id).scalar_subquery(), select(started.c.id).scalar_subquery()
    )
    opened = (
        insert(MessageLog)
        .from_select(
            [
                "user_id",
                "conversation_id",
                "client_message_id",
                "provider",
                "model",
                "api_model",
                "request_text",
                "status",
                "charged",
                "kind",
                "credits",
            ],
            select(
                uid,
                conversation,
                client_id,
                bindparam("r_provider", type_=String),
                bindparam("r_model", type_=String),
                bindparam("r_api_model", type_=String),
                bindparam("r_request_text", type_=Text),
                literal(MessageStatus.PENDING.value, String),
                literal(charged, Boolean),
                bindparam("r_kind", type_=String),
                credits,
            ).where(*may_open),
        )
        .returning(MessageLog.id, MessageLog.conversation_id)
        .cte("opened")
    )
    past = (
        select(
            MessageLog.id,
            func.coalesce(MessageLog.request_text, "").label("asked"),
            func.coalesce(MessageLog.response_text, "").label("answered"),
        )
        .where(
            MessageLog.conversation_id == select(newest.c.id).scalar_subquery(),
            MessageLog.status == MessageStatus.SUCCESS.value,
            # Pictures made on request are not part of what the chat models read back.
            MessageLog.kind != MessageKind.IMAGE.value,
        )
        .order_by(MessageLog.id.desc())
        .limit(bindparam("r_history_limit", type_=Integer))
        .cte("past")
    )
    stmt = select(
        select(opened.c.id).scalar_subquery(),
        select(opened.c.conversation_id).scalar_subquery(),
        select(taken.c.messages_left).scalar_subquery() if taken is not None else literal(None),
        select(existing.c.id).scalar_subquery() if existing is not None else literal(None),
        select(func.array_agg(aggregate_order_by(past.c.asked, past.c.id.desc())))
        .scalar_subquery()
        .label("asked"),
        select(func.array_agg(aggregate_order_by(past.c.answered, past.c.id.desc())))
        .scalar_subquery()
        .label("answered"),
    ).add_cte(started)
    if taken is not None:
        used = insert(CreditHistory).from_select(
            ["user_id", "kind", "delta", "balance_after", "message_id"],
            select(
                uid,
                literal(CreditKind.USE.value, String),
                -credits,
                taken.c.messages_left,
                opened.c.id,
            ).select_from(taken.join(opened, true())),
        )
        stmt = stmt.add_cte(used.cte("used"))
    return stmt


async def reserve_message(
    session: AsyncSession, fields: NewMessage, *, history_limit: int = 0
) -> Reserved:
    """Open a pending message, taking `fields.credits` free messages when charged: one statement.

    Duplicate check, conditional charge (`messages_left >= credits`, re-checked on the locked
    row however many requests race), the conversation (started if the user has none), the
    message, its ledger entry and the conversation's history, in a single round trip. Being one
    statement it is atomic: a client id that wins a race at the same instant makes the
    statement fail as a whole (`IntegrityError`), so nothing is taken then either.
    """
    stmt = _reservation(fields.client_message_id is not None, fields.charged)
    values = {
        "r_user_id": fields.user_id,
        "r_credits": fields.credits,
        "r_client_message_id": fields.client_message_id,
        "r_provider": fields.provider,
        "r_model": fields.model,
        "r_api_model": fields.api_model,
        "r_request_text": fields.request_text,
        "r_kind": fields.kind,
        "r_history_limit": history_limit,
    }
    row = (await session.execute(stmt, values)).one()
    asked, answered = row.asked or [], row.answered or []
    return Reserved(
        message_id=row[0],
        conversation_id=row[1],
        messages_left=row[2],
        duplicate_id=row[3],
        history=list(zip(asked, answered, strict=True)),
    )


def _details(details: dict[str, Any] | None) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns a settlement stores (the statement's shape) and their values, bound as d_*."""
    details = details or {}
    names = tuple(sorted(details))
    return names, {f"d_{name}": details[name] for name in names}


def _bound_details(names: tuple[str, ...]) -> dict[str, Any]:
    columns = MessageLog.__mapper__.columns
    return {name: bindparam(f"d_{name}", type_=columns[name].type) for name in names}


def _settle_pending(status: MessageStatus, names: tuple[str, ...], **values: Any) -> Any:
    """UPDATE of the bound message (p_message_id) to `status`, only while it is pending."""
    return (
        update(MessageLog)
        .where(
            MessageLog.id == bindparam("p_message_id", type_=BigInteger),
            MessageLog.status == MessageStatus.PENDING.value,
        )
        .values(status=status.value, completed_at=func.now(), **values, **_bound_details(names))
    )


@functools.cache
def _settled_success(names: tuple[str, ...]) -> Any:
    settled = (
        _settle_pending(MessageStatus.SUCCESS, names).returning(MessageLog.user_id).cte("settled")
    )
    left = select(Trial.messages_left).where(Trial.user_id == settled.c.user_id)
    return select(left.scalar_subquery()).select_from(settled)


async def settle_success(
    session: AsyncSession, message_id: int, details: dict[str, Any] | None = None
) -> int | None:
    """Mark a pending message answered, storing `details`; the user's free messages left.

    None when the message was not pending (settled before, or unknown): one statement, so a
    commit and a refund racing settle it once.
    """
    names, values = _details(details)
    stmt = _settled_success(names)
    row = (await session.execute(stmt, {"p_message_id": message_id, **values})).one_or_none()
    return None if row is None else int(row[0] or 0)


@dataclass(frozen=True, slots=True)
class Refunded:
    charged: bool  # the message had taken free messages, now given back
    messages_left: int


@functools.cache
def _settled_failure(names: tuple[str, ...]) -> Any:
    error_code = bindparam("p_error_code", type_=String)
    settled = (
        _settle_pending(MessageStatus.FAILED, names, error_code=error_code)
        .returning(MessageLog.id, MessageLog.user_id, MessageLog.charged, MessageLog.credits)
        .cte("settled")
    )
    given = (
        update(Trial)
        .where(Trial.user_id == settled.c.user_id, settled.c.charged)
        .values(
            messages_left=func.greatest(Trial.messages_left + settled.c.credits, 0),
            updated_at=func.now(),
        )
        .returning(Trial.messages_left)
        .cte("given")
    )
    refund = insert(CreditHistory).from_select(
        ["user_id", "kind", "delta", "balance_after", "message_id", "reason"],
        select(
            settled.c.user_id,
            literal(CreditKind.REFUND.value, String),
            settled.c.credits,
            given.c.messages_left,
            settled.c.id,
            error_code,
        ).select_from(settled.join(given, true())),
    )
    unchanged = select(Trial.messages_left).where(Trial.user_id == settled.c.user_id)
    return (
        select(
            settled.c.charged,
            func.coalesce(given.c.messages_left, unchanged.scalar_subquery(), 0),
        )
        .select_from(settled.outerjoin(given, true()))
        .add_cte(refund.cte("refund"))
    )


async def settle_failure(
    session: AsyncSession,
    message_id: int,
    error_code: str,
    details: dict[str, Any] | None = None,
) -> Refunded | None:
    """Mark a pending message failed and give back what it took, with the ledger entry.

    One statement (settle, give back, ledger); None when the message was not pending.
    """
    names, values = _details(details)
    stmt = _settled_failure(names)
    params = {"p_message_id": message_id, "p_error_code": error_code, **values}
    row = (await session.execute(stmt, params)).one_or_none()
    return None if row is None else Refunded(charged=bool(row[0]), messages_left=int(row[1]))


def audit(
    session: AsyncSession,
    admin_id: int,
    action: AdminActionKind,
    target: int | None,
    detail: dict[str, object] | None,
    at: datetime,
) -> None:
    """An operator's action in the audit trail, in the caller's transaction."""
    session.add(
        AdminAction(
            admin_telegram_id=admin_id,
            action=action.value,
            target_telegram_id=target,
            detail=detail,
            created_at=at,
        )
    )

"""The PostgreSQL schema as typed SQLAlchemy models. Every change here comes with a migration."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backend.models.enums import (
    BroadcastAudience,
    BroadcastStatus,
    CreditKind,
    Language,
    MessageKind,
    MessageStatus,
    PaymentRail,
    SubscriptionStatus,
    TransactionStatus,
    sql_in,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("telegram_id > 0", name="telegram_id_positive"),
        CheckConstraint(f"language IN ({sql_in(Language)})", name="language_known"),
        CheckConstraint(
            "char_length(custom_instructions) <= 4000", name="custom_instructions_length"
        ),
        Index("ix_users_username_lower", func.lower(text("username"))),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(256))
    last_name: Mapped[str | None] = mapped_column(String(256))
    language_code: Mapped[str | None] = mapped_column(String(35))
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(64), nullable=False)
    show_reasoning: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    mode: Mapped[str] = mapped_column(String(32), nullable=False, server_default="general")
    custom_instructions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _created_at()
    last_seen_at: Mapped[datetime] = _created_at()
    # Set by an operator: the user gets no answers and cannot pay until unblocked.
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Telegram refused a broadcast to them (they blocked the bot); cleared when they return.
    bot_blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Trial(Base):
    """The free-message allowance of one user; `messages_left` never goes below zero."""

    __tablename__ = "trials"
    __table_args__ = (
        CheckConstraint("messages_left >= 0", name="messages_left_non_negative"),
        CheckConstraint("messages_limit >= 0", name="messages_limit_non_negative"),
    )

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    messages_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    messages_left: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _created_at()


class Conversation(Base):
    """A thread of messages; a user's current conversation is their newest one."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = _created_at()


class MessageLog(Base):
    """One question and its answer: opened when the credit is reserved, settled once."""

    __tablename__ = "messages_log"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(MessageStatus)})", name="status_known"),
        CheckConstraint(f"kind IN ({sql_in(MessageKind)})", name="kind_known"),
        CheckConstraint("credits > 0", name="credits_positive"),
        CheckConstraint("input_tokens IS NULL OR input_tokens >= 0", name="input_tokens_ok"),
        CheckConstraint("output_tokens IS NULL OR output_tokens >= 0", name="output_tokens_ok"),
        CheckConstraint("cost_usd IS NULL OR cost_usd >= 0", name="cost_non_negative"),
        CheckConstraint(
            "(status = 'pending') = (completed_at IS NULL)", name="settled_has_completed_at"
        ),
        Index("ix_messages_log_user_id_created_at", "user_id", "created_at"),
        Index("ix_messages_log_created_at", "created_at"),  # the operators' daily figures
        Index(
            "ix_messages_log_pending_created_at",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_messages_log_conversation_id_id",
            "conversation_id",
            "id",
            postgresql_where=text("status = 'success'"),
        ),
        # A retried request (same client message id) is answered and charged once.
        UniqueConstraint(
            "user_id", "client_message_id", name="uq_messages_log_user_id_client_message_id"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    conversation_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    client_message_id: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(64), nullable=False)
    api_model: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    charged: Mapped[bool] = mapped_column(Boolean, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, server_default="text")
    # Free messages this answer takes when charged (a picture may cost more than one).
    credits: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    request_text: Mapped[str | None] = mapped_column(Text)
    response_text: Mapped[str | None] = mapped_column(Text)
    reasoning_text: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[dict[str, str | None]] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    cached_input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Subscription(Base):
    """A user's VIP state: one row per user, extended in place by each payment."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(SubscriptionStatus)})", name="status_known"),
        Index("ix_subscriptions_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    auto_renew: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    telegram_charge_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _created_at()


class Transaction(Base):
    """One charge (or the invoice awaiting it). A charge id can be recorded only once."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(TransactionStatus)})", name="status_known"),
        CheckConstraint(f"rail IN ({sql_in(PaymentRail)})", name="rail_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint(
            "status <> 'paid' OR telegram_payment_charge_id IS NOT NULL",
            name="paid_has_charge_id",
        ),
        Index("ix_transactions_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    rail: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    invoice_payload: Mapped[str | None] = mapped_column(String(128), unique=True)
    telegram_payment_charge_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    provider_payment_charge_id: Mapped[str | None] = mapped_column(String(255))
    is_recurring: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    is_first_recurring: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=false()
    )
    subscription_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditHistory(Base):
    """The append-only ledger: every change of a free allowance, with the balance after it."""

    __tablename__ = "credits_history"
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(CreditKind)})", name="kind_known"),
        CheckConstraint("delta <> 0", name="delta_non_zero"),
        CheckConstraint("balance_after >= 0", name="balance_non_negative"),
        CheckConstraint(
            "(kind = 'use' AND delta < 0 AND message_id IS NOT NULL)"
            " OR (kind = 'refund' AND delta > 0 AND message_id IS NOT NULL)"
            " OR (kind = 'grant' AND delta > 0)"
            " OR kind = 'admin'",
            name="kind_shape",
        ),
        # A message is charged at most once and refunded at most once.
        UniqueConstraint("message_id", "kind", name="uq_credits_history_message_id_kind"),
        Index("ix_credits_history_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    delta: Mapped[int] = mapped_column(Integer, nullable=False)
    balance_after: Mapped[int] = mapped_column(Integer, nullable=False)
    message_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("messages_log.id"))
    reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created_at()


class PaymentEvent(Base):
    """A payment provider's webhook event, kept so a replayed event is applied once."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    received_at: Mapped[datetime] = _created_at()


class UpdateClaim(Base):
    """A Telegram update some bot replica has taken on: a redelivery is not handled again."""

    __tablename__ = "update_claims"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    claimed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )


class Broadcast(Base):
    """A message an operator sends to many users, copied to them in telegram_id order.

    `cursor` is the last recipient handled, so a runner that stops resumes after it. A runner
    holds the lease (`lease_until`) while it sends the batch ending at `lease_cursor`.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (
        CheckConstraint(f"audience IN ({sql_in(BroadcastAudience)})", name="audience_known"),
        CheckConstraint(f"status IN ({sql_in(BroadcastStatus)})", name="status_known"),
        CheckConstraint(
            "cursor >= 0 AND total >= 0 AND delivered >= 0 AND blocked >= 0 AND failed >= 0",
            name="counts_non_negative",
        ),
        CheckConstraint(
            "(status = 'running') = (finished_at IS NULL)", name="finished_has_finished_at"
        ),
        Index("ix_broadcasts_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    admin_telegram_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    audience: Mapped[str] = mapped_column(Text, nullable=False)
    from_chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    message_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="running")
    cursor: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    delivered: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    blocked: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_cursor: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AdminAction(Base):
    """The audit trail: what an operator did, to whom, with what."""

    __tablename__ = "admin_actions"
    __table_args__ = (Index("ix_admin_actions_target_telegram_id", "target_telegram_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    admin_telegram_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    target_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()

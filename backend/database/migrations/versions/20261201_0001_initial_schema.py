"""Initial schema: users, trials, messages_log, subscriptions, transactions, credits_history.

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-01 19:56:35.349787
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION credits_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credits_history is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER credits_history_append_only
BEFORE UPDATE OR DELETE ON credits_history
FOR EACH ROW EXECUTE FUNCTION credits_history_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=256), nullable=True),
        sa.Column("last_name", sa.String(length=256), nullable=True),
        sa.Column("language_code", sa.String(length=35), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("language IN ('ru', 'en')", name=op.f("ck_users_language_known")),
        sa.CheckConstraint("telegram_id > 0", name=op.f("ck_users_telegram_id_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_users_telegram_id")),
    )
    op.create_index(
        "ix_users_username_lower", "users", [sa.literal_column("lower(username)")], unique=False
    )
    op.create_table(
        "messages_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("charged", sa.Boolean(), nullable=False),
        sa.Column("request_text", sa.Text(), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Numeric(precision=12, scale=6), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'pending') = (completed_at IS NULL)",
            name=op.f("ck_messages_log_settled_has_completed_at"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'success', 'failed')", name=op.f("ck_messages_log_status_known")
        ),
        sa.CheckConstraint(
            "cost_usd IS NULL OR cost_usd >= 0", name=op.f("ck_messages_log_cost_non_negative")
        ),
        sa.CheckConstraint(
            "input_tokens IS NULL OR input_tokens >= 0",
            name=op.f("ck_messages_log_input_tokens_ok"),
        ),
        sa.CheckConstraint(
            "output_tokens IS NULL OR output_tokens >= 0",
            name=op.f("ck_messages_log_output_tokens_ok"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_messages_log_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages_log")),
    )
    op.create_index(
        "ix_messages_log_pending_created_at",
        "messages_log",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_messages_log_user_id_created_at",
        "messages_log",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("telegram_charge_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'canceled', 'expired', 'refunded')",
            name=op.f("ck_subscriptions_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("user_id", name=op.f("uq_subscriptions_user_id")),
    )
    op.create_index("ix_subscriptions_expires_at", "subscriptions", ["expires_at"], unique=False)
    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("rail", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("invoice_payload", sa.String(length=128), nullable=True),
        sa.Column("telegram_payment_charge_id", sa.String(length=255), nullable=True),
        sa.Column("provider_payment_charge_id", sa.String(length=255), nullable=True),
        sa.Column("is_recurring", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "is_first_recurring", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("subscription_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_days", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_transactions_currency_iso")),
        sa.CheckConstraint(
            "rail IN ('telegram_stars', 'telegram_provider', 'external')",
            name=op.f("ck_transactions_rail_known"),
        ),
        sa.CheckConstraint(
            "status <> 'paid' OR telegram_payment_charge_id IS NOT NULL",
            name=op.f("ck_transactions_paid_has_charge_id"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'refunded', 'failed')",
            name=op.f("ck_transactions_status_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transactions_amount_positive")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_transactions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("invoice_payload", name=op.f("uq_transactions_invoice_payload")),
        sa.UniqueConstraint(
            "telegram_payment_charge_id", name=op.f("uq_transactions_telegram_payment_charge_id")
        ),
    )
    op.create_index(
        "ix_transactions_user_id_created_at",
        "transactions",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "trials",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("messages_limit", sa.Integer(), nullable=False),
        sa.Column("messages_left", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("messages_left >= 0", name=op.f("ck_trials_messages_left_non_negative")),
        sa.CheckConstraint(
            "messages_limit >= 0", name=op.f("ck_trials_messages_limit_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_trials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_trials")),
    )
    op.create_table(
        "credits_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("balance_after", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'use' AND delta < 0 AND message_id IS NOT NULL) OR (kind = 'refund' AND delta > 0 AND message_id IS NOT NULL) OR (kind = 'grant' AND delta > 0) OR kind = 'admin'",
            name=op.f("ck_credits_history_kind_shape"),
        ),
        sa.CheckConstraint(
            "kind IN ('grant', 'use', 'refund', 'admin')",
            name=op.f("ck_credits_history_kind_known"),
        ),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_credits_history_balance_non_negative")
        ),
        sa.CheckConstraint("delta <> 0", name=op.f("ck_credits_history_delta_non_zero")),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages_log.id"],
            name=op.f("fk_credits_history_message_id_messages_log"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_credits_history_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credits_history")),
        sa.UniqueConstraint("message_id", "kind", name="uq_credits_history_message_id_kind"),
    )
    op.create_index(
        "ix_credits_history_user_id_id", "credits_history", ["user_id", "id"], unique=False
    )
    # The ledger is append-only: corrections are new rows, never edits.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS credits_history_append_only ON credits_history")
    op.execute("DROP FUNCTION IF EXISTS credits_history_append_only()")
    op.drop_index("ix_credits_history_user_id_id", table_name="credits_history")
    op.drop_table("credits_history")
    op.drop_table("trials")
    op.drop_index("ix_transactions_user_id_created_at", table_name="transactions")
    op.drop_table("transactions")
    op.drop_index("ix_subscriptions_expires_at", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_messages_log_user_id_created_at", table_name="messages_log")
    op.drop_index(
        "ix_messages_log_pending_created_at",
        table_name="messages_log",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("messages_log")
    op.drop_index("ix_users_username_lower", table_name="users")
    op.drop_table("users")

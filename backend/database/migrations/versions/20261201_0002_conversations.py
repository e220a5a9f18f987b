"""Conversations, idempotent client message ids, reasoning, sources, usage details.

Revision ID: 0002_conversations
Revises: 0001_initial
Create Date: 2026-12-01 20:07:28.296721
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_conversations"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_conversations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index("ix_conversations_user_id_id", "conversations", ["user_id", "id"], unique=False)
    op.add_column(
        "users",
        sa.Column("show_reasoning", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.add_column("messages_log", sa.Column("conversation_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "messages_log", sa.Column("client_message_id", sa.String(length=64), nullable=True)
    )
    op.add_column("messages_log", sa.Column("api_model", sa.String(length=128), nullable=True))
    op.add_column("messages_log", sa.Column("reasoning_text", sa.Text(), nullable=True))
    op.add_column(
        "messages_log", sa.Column("sources", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("messages_log", sa.Column("cached_input_tokens", sa.Integer(), nullable=True))
    op.add_column("messages_log", sa.Column("reasoning_tokens", sa.Integer(), nullable=True))
    op.add_column("messages_log", sa.Column("first_token_ms", sa.Integer(), nullable=True))
    op.create_index(
        "ix_messages_log_conversation_id_id",
        "messages_log",
        ["conversation_id", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'success'"),
    )
    op.create_unique_constraint(
        "uq_messages_log_user_id_client_message_id",
        "messages_log",
        ["user_id", "client_message_id"],
    )
    op.create_foreign_key(
        op.f("fk_messages_log_conversation_id_conversations"),
        "messages_log",
        "conversations",
        ["conversation_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_messages_log_conversation_id_conversations"), "messages_log", type_="foreignkey"
    )
    op.drop_constraint("uq_messages_log_user_id_client_message_id", "messages_log", type_="unique")
    op.drop_index(
        "ix_messages_log_conversation_id_id",
        table_name="messages_log",
        postgresql_where=sa.text("status = 'success'"),
    )
    op.drop_column("messages_log", "first_token_ms")
    op.drop_column("messages_log", "reasoning_tokens")
    op.drop_column("messages_log", "cached_input_tokens")
    op.drop_column("messages_log", "sources")
    op.drop_column("messages_log", "reasoning_text")
    op.drop_column("messages_log", "api_model")
    op.drop_column("messages_log", "client_message_id")
    op.drop_column("messages_log", "conversation_id")
    op.drop_column("users", "show_reasoning")
    op.drop_index("ix_conversations_user_id_id", table_name="conversations")
    op.drop_table("conversations")

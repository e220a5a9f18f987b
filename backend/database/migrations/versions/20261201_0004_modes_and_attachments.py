"""Chat modes and personal instructions; message kinds and multi-credit answers.

Revision ID: 0004_modes_and_attachments
Revises: 0003_payment_events
Create Date: 2026-12-01 23:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_modes_and_attachments"
down_revision: str | None = "0003_payment_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'text', 'voice', 'photo', 'document', 'image'"


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("mode", sa.String(length=32), server_default="general", nullable=False),
    )
    op.add_column("users", sa.Column("custom_instructions", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_users_custom_instructions_length"),
        "users",
        "char_length(custom_instructions) <= 4000",
    )
    op.add_column(
        "messages_log",
        sa.Column("kind", sa.String(length=16), server_default="text", nullable=False),
    )
    op.add_column(
        "messages_log",
        sa.Column("credits", sa.Integer(), server_default="1", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_messages_log_kind_known"), "messages_log", f"kind IN ({KINDS})"
    )
    op.create_check_constraint(
        op.f("ck_messages_log_credits_positive"), "messages_log", "credits > 0"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_messages_log_credits_positive"), "messages_log", type_="check")
    op.drop_constraint(op.f("ck_messages_log_kind_known"), "messages_log", type_="check")
    op.drop_column("messages_log", "credits")
    op.drop_column("messages_log", "kind")
    op.drop_constraint(op.f("ck_users_custom_instructions_length"), "users", type_="check")
    op.drop_column("users", "custom_instructions")
    op.drop_column("users", "mode")

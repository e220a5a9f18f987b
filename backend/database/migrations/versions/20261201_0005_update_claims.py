"""Telegram update claims: each update is handled once across bot replicas.

Revision ID: 0005_update_claims
Revises: 0004_modes_and_attachments
Create Date: 2026-12-01 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_update_claims"
down_revision: str | None = "0004_modes_and_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "update_claims",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_update_claims")),
    )
    op.create_index(op.f("ix_update_claims_claimed_at"), "update_claims", ["claimed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_update_claims_claimed_at"), table_name="update_claims")
    op.drop_table("update_claims")

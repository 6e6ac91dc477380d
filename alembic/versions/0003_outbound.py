"""core: the out-of-band queue (mail and webhook posts)

Revision ID: 0003_outbound
Revises: 0001_outbox
Create Date: 2026-12-02

Hand-written to match ``ircbot/outbound.py`` (autogenerate reports no difference).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003_outbound"
down_revision = "0001_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbound_message_id")),
    )
    op.create_index(op.f("ix_outbound_ref"), "outbound", ["ref"])
    op.create_index(
        "ix_outbound_pending",
        "outbound",
        ["sent_at", "failed_at", "cancelled_at", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("outbound")

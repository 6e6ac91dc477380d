"""livechat: people's mail addresses, their confirmation, the digest; escalation marks

Revision ID: 0006_livechat_contact
Revises: 0005_livechat_attempts
Create Date: 2026-12-02

A coordinator's address (set from the shell, or by ``!email`` and confirmed with a code
sent there), the address and code awaiting confirmation, the weekly digest's opt-in; and on
an attempt, when its unread ready ping was escalated by mail (see ``escalation.py``).
Hand-written to match ``plugins/livechat/models.py`` (autogenerate reports no difference).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006_livechat_contact"
down_revision = "0005_livechat_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("people", sa.Column("email", sa.String(320), nullable=True))
    op.add_column("people", sa.Column("email_pending", sa.String(320), nullable=True))
    op.add_column("people", sa.Column("email_code", sa.String(64), nullable=True))
    op.add_column("people", sa.Column("email_code_until", sa.DateTime(), nullable=True))
    op.add_column(
        "people", sa.Column("email_code_tries", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "people", sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("attempts", sa.Column("escalated_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): none of these columns is indexed or keyed,
    # and a batch rebuild of attempts would drop a table that others' foreign keys name.
    op.drop_column("attempts", "escalated_at")
    for column in (
        "digest",
        "email_code_tries",
        "email_code_until",
        "email_code",
        "email_pending",
        "email",
    ):
        op.drop_column("people", column)

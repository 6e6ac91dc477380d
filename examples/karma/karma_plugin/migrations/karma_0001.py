"""karma: the thanks table

Revision ID: karma_0001
Revises:
Create Date: 2026-12-01

The first revision of the karma plugin's own branch (label ``karma``): ``down_revision`` is
None, so it stands beside the core's history, and ``ircbot db upgrade`` applies it while the
plugin is enabled.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "karma_0001"
down_revision = None
branch_labels = ("karma",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "karma_thanks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("giver", sa.String(255), nullable=False),
        sa.Column("receiver", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(400), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_karma_thanks")),
    )
    op.create_index(op.f("ix_karma_thanks_giver"), "karma_thanks", ["giver"])
    op.create_index(op.f("ix_karma_thanks_receiver"), "karma_thanks", ["receiver"])


def downgrade() -> None:
    op.drop_index(op.f("ix_karma_thanks_receiver"), table_name="karma_thanks")
    op.drop_index(op.f("ix_karma_thanks_giver"), table_name="karma_thanks")
    op.drop_table("karma_thanks")

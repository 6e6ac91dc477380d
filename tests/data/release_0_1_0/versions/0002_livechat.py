"""livechat: people, trainee attempts, vouches and the audit log

Revision ID: 0002_livechat
Revises: 0001_outbox
Create Date: 2026-11-25

Hand-written to match ``plugins/livechat/models.py`` (autogenerate reports no difference).
The open-attempt rule is a partial unique index, which SQLite (3.8+) and PostgreSQL both
support with the same WHERE clause.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0002_livechat"
down_revision = "0001_outbox"
branch_labels = None
depends_on = None

OPEN_SQL = "state IN ('training', 'ready', 'on_hold')"
STATES_SQL = (
    "state IN ('training', 'ready', 'on_hold', 'promoted', 'rejected', 'withdrawn', 'closed')"
)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(255), nullable=False),
        sa.Column("role", sa.Integer(), nullable=False),
        sa.Column("role_manual", sa.Boolean(), nullable=False),
        sa.Column("last_nick", sa.String(64), nullable=True),
        sa.Column("nick_key", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("identity", name=op.f("uq_people_identity")),
    )
    op.create_index(op.f("ix_people_role"), "people", ["role"])
    op.create_index(op.f("ix_people_nick_key"), "people", ["nick_key"])

    op.create_table(
        "trainees",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", sa.DateTime(), nullable=False),
        sa.Column("chat_account", sa.String(255), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("ready_at", sa.DateTime(), nullable=True),
        sa.Column("promoted_at", sa.DateTime(), nullable=True),
        sa.Column("promoted_by_id", sa.Integer(), nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("held_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(), nullable=False),
        sa.Column("idle_reminded_at", sa.DateTime(), nullable=True),
        sa.Column("sla_reminded_at", sa.DateTime(), nullable=True),
        sa.Column("sla_reminders", sa.Integer(), nullable=False),
        sa.CheckConstraint(STATES_SQL, name=op.f("ck_trainees_state")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_trainees_person_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["promoted_by_id"], ["people.id"], name=op.f("fk_trainees_promoted_by_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["held_by_id"], ["people.id"], name=op.f("fk_trainees_held_by_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["people.id"], name=op.f("fk_trainees_closed_by_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trainees")),
    )
    op.create_index(
        "uq_trainees_open_person",
        "trainees",
        ["person_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_SQL),
        postgresql_where=sa.text(OPEN_SQL),
    )
    op.create_index("ix_trainees_person_id_id", "trainees", ["person_id", "id"])
    op.create_index("ix_trainees_state_ready_at", "trainees", ["state", "ready_at"])
    op.create_index("ix_trainees_state_registered_at", "trainees", ["state", "registered_at"])
    op.create_index("ix_trainees_state_last_activity_at", "trainees", ["state", "last_activity_at"])

    op.create_table(
        "vouches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=False),
        sa.Column("voucher_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retracted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trainee_id"], ["trainees.id"], name=op.f("fk_vouches_trainee_id_trainees")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["people.id"], name=op.f("fk_vouches_voucher_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouches")),
        sa.UniqueConstraint(
            "trainee_id", "voucher_id", name=op.f("uq_vouches_trainee_id_voucher_id")
        ),
    )
    op.create_index(op.f("ix_vouches_voucher_id"), "vouches", ["voucher_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trainee_id"], ["trainees.id"], name=op.f("fk_audit_events_trainee_id_trainees")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_audit_events_person_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["people.id"], name=op.f("fk_audit_events_actor_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_trainee_id_id", "audit_events", ["trainee_id", "id"])
    op.create_index("ix_audit_events_person_id_id", "audit_events", ["person_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("vouches")
    op.drop_table("trainees")
    op.drop_table("people")

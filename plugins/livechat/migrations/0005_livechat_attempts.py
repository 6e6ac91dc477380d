"""livechat: a row of ``trainees`` is one attempt: the table is ``attempts``

Revision ID: 0005_livechat_attempts
Revises: 0002_livechat
Create Date: 2026-12-02

The model was ``Trainee``, yet a row is one *attempt* by a person (the trainee) at becoming
a helper, and a person may have several. The table, the columns pointing at it
(``vouches.trainee_id``, ``audit_events.trainee_id``) and every constraint and index whose
name says so are renamed to match ``plugins/livechat/models.py`` and its naming convention,
every row kept (ids included, so outbox refs such as ``trainee:12`` still name their row).

- PostgreSQL renames in place (``ALTER TABLE/INDEX/SEQUENCE ... RENAME``); foreign keys
  follow the table, which they name by its oid.
- SQLite cannot rename a constraint (its name is in the table's ``CREATE`` text), so the
  three tables are rebuilt the way Alembic's batch mode does: the new tables are created
  with their final constraints (the CHECK and the foreign keys written out, not reflected:
  batch mode drops reflected CHECKs), the rows copied, the old tables dropped (children
  first, as ``foreign_keys=ON`` requires), the new ones renamed into place, then the indexes
  (the partial unique one included) created. Nothing renamed is referred to by another
  table, so the rename does not depend on ``legacy_alter_table``.

Both run inside the one transaction ``alembic/env.py`` opens: a failure changes nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from alembic import op

revision = "0005_livechat_attempts"
down_revision = "0002_livechat"
branch_labels = None
depends_on = None

OPEN_SQL = "state IN ('training', 'ready', 'on_hold')"
STATES_SQL = (
    "state IN ('training', 'ready', 'on_hold', 'promoted', 'rejected', 'withdrawn', 'closed')"
)
PEOPLE_FKS = ("person_id", "promoted_by_id", "held_by_id", "closed_by_id")
ATTEMPT_INDEXES = (  # the name after ``ix_<table>_``, and the columns
    ("person_id_id", ("person_id", "id")),
    ("state_ready_at", ("state", "ready_at")),
    ("state_registered_at", ("state", "registered_at")),
    ("state_last_activity_at", ("state", "last_activity_at")),
)
ATTEMPT_COLUMNS = (
    "id, person_id, state, state_since, chat_account, registered_at, ready_at, promoted_at, "
    "promoted_by_id, hold_reason, held_by_id, closed_at, closed_by_id, close_reason, "
    "last_activity_at, idle_reminded_at, sla_reminded_at, sla_reminders"
)


class Names(NamedTuple):
    """What the attempts' table and the columns pointing at it are called."""

    table: str
    column: str


OLD = Names("trainees", "trainee_id")
NEW = Names("attempts", "attempt_id")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(OLD, NEW)
    else:
        _rename(OLD, NEW)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(NEW, OLD)
    else:
        _rename(NEW, OLD)


# ------------------------------------------------------------------------------- PostgreSQL


def _rename(old: Names, new: Names) -> None:
    op.rename_table(old.table, new.table)
    op.execute(f"ALTER SEQUENCE {old.table}_id_seq RENAME TO {new.table}_id_seq")
    constraints = ["pk_{}", "ck_{}_state"] + [f"fk_{{}}_{c}_people" for c in PEOPLE_FKS]
    for name in constraints:
        _rename_constraint(new.table, name.format(old.table), name.format(new.table))
    indexes = ["uq_{}_open_person"] + [f"ix_{{}}_{suffix}" for suffix, _ in ATTEMPT_INDEXES]
    for name in indexes:
        op.execute(f"ALTER INDEX {name.format(old.table)} RENAME TO {name.format(new.table)}")

    for child in ("vouches", "audit_events"):
        op.alter_column(child, old.column, new_column_name=new.column)
        _rename_constraint(
            child, f"fk_{child}_{old.column}_{old.table}", f"fk_{child}_{new.column}_{new.table}"
        )
    _rename_constraint(
        "vouches", f"uq_vouches_{old.column}_voucher_id", f"uq_vouches_{new.column}_voucher_id"
    )
    op.execute(
        f"ALTER INDEX ix_audit_events_{old.column}_id RENAME TO ix_audit_events_{new.column}_id"
    )


def _rename_constraint(table: str, old: str, new: str) -> None:
    op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")


# ----------------------------------------------------------------------------------- SQLite


def _rebuild(old: Names, new: Names) -> None:
    _create_attempts(new)
    op.execute(
        f"INSERT INTO {new.table} ({ATTEMPT_COLUMNS}) SELECT {ATTEMPT_COLUMNS} FROM {old.table}"
    )
    _create_vouches("_new_vouches", new)
    op.execute(
        f"INSERT INTO _new_vouches (id, {new.column}, voucher_id, note, created_at, "
        f"retracted_at) SELECT id, {old.column}, voucher_id, note, created_at, retracted_at "
        "FROM vouches"
    )
    _create_audit_events("_new_audit_events", new)
    op.execute(
        f"INSERT INTO _new_audit_events (id, {new.column}, person_id, actor_id, kind, detail, "
        f"at) SELECT id, {old.column}, person_id, actor_id, kind, detail, at FROM audit_events"
    )
    # Children before their parent: with foreign_keys=ON, dropping a table still referred
    # to deletes its rows under the foreign keys' check.
    op.drop_table("audit_events")
    op.drop_table("vouches")
    op.drop_table(old.table)
    op.rename_table("_new_vouches", "vouches")
    op.rename_table("_new_audit_events", "audit_events")

    op.create_index(
        f"uq_{new.table}_open_person",
        new.table,
        ["person_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_SQL),
    )
    for suffix, columns in ATTEMPT_INDEXES:
        op.create_index(f"ix_{new.table}_{suffix}", new.table, list(columns))
    op.create_index(op.f("ix_vouches_voucher_id"), "vouches", ["voucher_id"])
    op.create_index(f"ix_audit_events_{new.column}_id", "audit_events", [new.column, "id"])
    op.create_index("ix_audit_events_person_id_id", "audit_events", ["person_id", "id"])


def _create_attempts(names: Names) -> None:
    table = names.table
    op.create_table(
        table,
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
        sa.CheckConstraint(STATES_SQL, name=op.f(f"ck_{table}_state")),
        *(
            sa.ForeignKeyConstraint(
                [column], ["people.id"], name=op.f(f"fk_{table}_{column}_people")
            )
            for column in PEOPLE_FKS
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )


def _create_vouches(table: str, names: Names) -> None:
    """``vouches`` (named ``table`` until it is renamed into place)."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(names.column, sa.Integer(), nullable=False),
        sa.Column("voucher_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retracted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            [names.column],
            [f"{names.table}.id"],
            name=op.f(f"fk_vouches_{names.column}_{names.table}"),
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["people.id"], name=op.f("fk_vouches_voucher_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouches")),
        sa.UniqueConstraint(
            names.column, "voucher_id", name=op.f(f"uq_vouches_{names.column}_voucher_id")
        ),
    )


def _create_audit_events(table: str, names: Names) -> None:
    """``audit_events`` (named ``table`` until it is renamed into place)."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(names.column, sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            [names.column],
            [f"{names.table}.id"],
            name=op.f(f"fk_audit_events_{names.column}_{names.table}"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_audit_events_person_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["people.id"], name=op.f("fk_audit_events_actor_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )

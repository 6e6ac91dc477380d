"""Each plugin migrates on its own branch, and a database of the linear history upgrades in place.

Release 0.1.0 kept the livechat tables in the core's history (``0001_outbox`` then
``0002_livechat``, one line). Its migration files are frozen under
``tests/data/release_0_1_0``: a database is built with them, filled with rows in every table,
then upgraded by today's ``ircbot.storage.migrate`` with the livechat branch enabled, or
disabled. Every row must survive, the schema must equal the models, and a plugin that is not
enabled must keep its tables and its version row exactly as they were, even while another
branch is upgraded, or fails to. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from click.testing import CliRunner
from ircbot_plugins.livechat import plugin as livechat
from ircbot_plugins.livechat.models import Attempt, Person, Vouch
from sqlalchemy import MetaData, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from alembic import command
from ircbot import storage
from ircbot.cli import main
from ircbot.outbound import Outbound
from ircbot.outbox import OutboxMessage
from ircbot.storage import Base, is_current, make_engine, make_session_factory, migrate
from tests.support.postgres import BACKENDS, database_url

pytestmark = pytest.mark.timeout(120)

RELEASE_0_1_0 = Path(__file__).parents[1] / "data" / "release_0_1_0"
LIVECHAT_TABLES = {"people", "attempts", "vouches", "audit_events"}
LIVECHAT_TABLES_0_1_0 = {"people", "trainees", "vouches", "audit_events"}
CORE_TABLES = {"outbox", "outbound", "alembic_version"}
CORE_HEAD = "0003_outbound"  # the core's newest revision
LIVECHAT_HEAD = "0006_livechat_contact"  # the livechat branch's newest
LIVECHAT_0_1_0 = "0002_livechat"  # release 0.1.0's head, now the livechat branch's first
# Columns added since release 0.1.0, and what an upgraded row holds in them.
NEW_COLUMNS: dict[str, dict[str, Any]] = {
    "people": dict(email=None, email_pending=None, email_code=None, email_code_until=None,
                   email_code_tries=0, digest=False),
    "attempts": dict(escalated_at=None),
}  # fmt: skip
# Tables and columns renamed since release 0.1.0 (``0005_livechat_attempts``): old -> new.
RENAMED_TABLES = {"trainees": "attempts"}
RENAMED_COLUMNS = {
    "vouches": {"trainee_id": "attempt_id"},
    "audit_events": {"trainee_id": "attempt_id"},
}
T0 = dt.datetime(2026, 1, 5, 9, 30, 15)  # naive UTC: what release 0.1.0 stored

ROWS: dict[str, list[dict[str, Any]]] = {
    "people": [
        dict(id=1, identity="carol", role=2, role_manual=True, last_nick="Carol",
             nick_key="carol", created_at=T0, last_seen_at=T0 + dt.timedelta(hours=1)),
        dict(id=2, identity="bob", role=1, role_manual=False, last_nick="bob",
             nick_key="bob", created_at=T0, last_seen_at=None),
        dict(id=3, identity="~alice@example.net", role=0, role_manual=False, last_nick=None,
             nick_key=None, created_at=T0, last_seen_at=None),
    ],
    "trainees": [
        dict(id=1, person_id=3, state="rejected", state_since=T0 + dt.timedelta(days=1),
             chat_account=None, registered_at=T0, ready_at=None, promoted_at=None,
             promoted_by_id=None, hold_reason="on leave", held_by_id=1,
             closed_at=T0 + dt.timedelta(days=1), closed_by_id=1, close_reason="not yet",
             last_activity_at=T0, idle_reminded_at=T0, sla_reminded_at=None, sla_reminders=0),
        dict(id=2, person_id=3, state="ready", state_since=T0 + dt.timedelta(days=3),
             chat_account="alice_chat", registered_at=T0 + dt.timedelta(days=2),
             ready_at=T0 + dt.timedelta(days=3), promoted_at=None, promoted_by_id=None,
             hold_reason=None, held_by_id=None, closed_at=None, closed_by_id=None,
             close_reason=None, last_activity_at=T0 + dt.timedelta(days=3),
             idle_reminded_at=None, sla_reminded_at=T0 + dt.timedelta(days=4), sla_reminders=2),
    ],
    "vouches": [
        dict(id=1, trainee_id=2, voucher_id=2, note="great with newcomers",
             created_at=T0 + dt.timedelta(days=2), retracted_at=None),
        dict(id=2, trainee_id=2, voucher_id=1, note=None, created_at=T0 + dt.timedelta(days=3),
             retracted_at=T0 + dt.timedelta(days=3, hours=2)),
    ],
    "audit_events": [
        dict(id=1, trainee_id=1, person_id=3, actor_id=None, kind="registered", detail=None,
             at=T0),
        dict(id=2, trainee_id=1, person_id=3, actor_id=1, kind="rejected", detail="not yet",
             at=T0 + dt.timedelta(days=1)),
        dict(id=3, trainee_id=None, person_id=2, actor_id=1, kind="role", detail="helper",
             at=T0),
    ],
    "outbox": [
        dict(id=1, recipient="carol", text="alice is ready", kind="ready", ref="trainee:2",
             created_at=T0 + dt.timedelta(days=3), delivered_at=None, cancelled_at=None),
        dict(id=2, recipient="~alice@example.net", text="you're ready", kind="ready",
             ref=None, created_at=T0, delivered_at=T0 + dt.timedelta(minutes=5),
             cancelled_at=None),
    ],
}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of each backend."""
    for url in database_url(request.param, tmp_path, "migrations"):
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def build_with_release_0_1_0(engine: Engine) -> None:
    """The schema release 0.1.0 made, by its own migration files, then a row in every table."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(RELEASE_0_1_0))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")
    assert version_rows(engine) == {"0002_livechat"}, "not the linear history's head"
    reflected = MetaData()
    reflected.reflect(engine)
    with engine.begin() as conn:
        for table in ("people", "trainees", "vouches", "audit_events", "outbox"):
            conn.execute(reflected.tables[table].insert(), ROWS[table])
        if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ROWS:
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"),
                    {"n": len(ROWS[table])},
                )


def version_rows(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of the five tables, as the database gives them back, in id order."""
    reflected = MetaData()
    reflected.reflect(engine)
    with engine.connect() as conn:
        return {
            name: [dict(row._mapping) for row in conn.execute(select(table).order_by(table.c.id))]
            for name, table in reflected.tables.items()
            if name in ROWS or name in RENAMED_TABLES.values()
        }


def with_new_columns(before: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """``before`` as the livechat branch's head shows it: every value kept, under its table's
    and column's new name where it was renamed, the columns added since release 0.1.0
    holding their defaults."""
    after = {}
    for name, rows in before.items():
        new_name = RENAMED_TABLES.get(name, name)
        columns = RENAMED_COLUMNS.get(name, {})
        after[new_name] = [
            {**{columns.get(k, k): v for k, v in row.items()}, **NEW_COLUMNS.get(new_name, {})}
            for row in rows
        ]
    return after


def schema_differences(engine: Engine, metadata: MetaData = Base.metadata) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)


def core_only_metadata() -> MetaData:
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    OutboxMessage.__table__.to_metadata(metadata)
    Outbound.__table__.to_metadata(metadata)
    return metadata


def livechat_schema(engine: Engine) -> str:
    """The livechat tables' columns, keys and indexes as the database reports them (as
    text: a partial index's WHERE comes back as a clause object, equal only to itself)."""
    found = inspect(engine)
    present = set(found.get_table_names()) & (LIVECHAT_TABLES | LIVECHAT_TABLES_0_1_0)
    schema = {
        name: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(name)],
            found.get_pk_constraint(name),
            sorted(found.get_foreign_keys(name), key=lambda fk: fk["name"] or ""),
            sorted(found.get_indexes(name), key=lambda ix: ix["name"] or ""),
            sorted(found.get_unique_constraints(name), key=lambda uq: uq["name"] or ""),
            sorted(found.get_check_constraints(name), key=lambda ck: ck["name"] or ""),
        )
        for name in sorted(present)
    }
    return json.dumps(schema, default=str, sort_keys=True)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def probe_plugin_branch(folder: Path, *, fails: bool = False) -> Path:
    """A third-party plugin's migration branch: one revision, one table (or one that fails
    half-way, after creating its table)."""
    folder.mkdir()
    failure = '    op.execute("SELECT no_such_column FROM probe_notes")\n' if fails else ""
    (folder / "probe_0001.py").write_text(
        '"""probe: notes"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        'revision = "probe_0001"\n'
        "down_revision = None\n"
        'branch_labels = ("probe",)\n'
        "depends_on = None\n\n\n"
        "def upgrade():\n"
        '    op.create_table("probe_notes", sa.Column("id", sa.Integer(), primary_key=True))\n'
        f"{failure}\n\n"
        "def downgrade():\n"
        '    op.drop_table("probe_notes")\n',
        encoding="utf-8",
    )
    return folder


# ------------------------------------------------------------- release 0.1.0, in place


def test_a_release_0_1_0_database_upgrades_in_place_with_every_row(engine):
    build_with_release_0_1_0(engine)
    before = snapshot(engine)
    assert {name: len(rows) for name, rows in before.items()} == {
        name: len(rows) for name, rows in ROWS.items()
    }

    migrate(engine, [livechat.migrations])

    assert snapshot(engine) == with_new_columns(before)
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_HEAD}  # one head per branch
    assert is_current(engine, [livechat.migrations])
    assert schema_differences(engine) == []
    # Today's models read the old rows, and new rows take ids after them.
    with storage.transaction(make_session_factory(engine)) as session:
        attempt = session.get(Attempt, 2)
        assert (attempt.state, attempt.person.identity) == ("ready", "~alice@example.net")
        assert attempt.ready_at == (T0 + dt.timedelta(days=3)).replace(tzinfo=dt.UTC)
        assert session.scalar(select(func.count()).select_from(Vouch)) == 2
        newcomer = Person(identity="dave", created_at=T0.replace(tzinfo=dt.UTC))
        session.add(newcomer)
        session.flush()
        assert newcomer.id == 4
        at = T0.replace(tzinfo=dt.UTC)
        fresh = Attempt(person=newcomer, state_since=at, registered_at=at, last_activity_at=at)
        session.add(fresh)
        session.flush()
        assert fresh.id == 3  # the renamed table's id sequence went along


def test_a_release_0_1_0_database_with_livechat_disabled_keeps_its_tables(engine):
    build_with_release_0_1_0(engine)
    before, schema_before = snapshot(engine), livechat_schema(engine)

    migrate(engine)  # the core only: [bot] plugins does not name livechat

    assert snapshot(engine) == before
    assert tables(engine) == {*LIVECHAT_TABLES_0_1_0, *CORE_TABLES}
    # The core's row is back and at its head, the livechat branch's row is where it was.
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_0_1_0}
    assert is_current(engine)
    assert livechat_schema(engine) == schema_before

    # Enabled again later: its branch catches up, nothing lost.
    migrate(engine, [livechat.migrations])
    assert snapshot(engine) == with_new_columns(before)
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_HEAD}
    assert schema_differences(engine) == []


def test_ircbot_db_upgrade_leaves_a_disabled_plugin_alone(engine, tmp_path):
    build_with_release_0_1_0(engine)
    before = snapshot(engine)
    url = engine.url.render_as_string(hide_password=False)
    config = tmp_path / "ircbot.toml"
    config.write_text(f'[bot]\nplugins = []\n\n[database]\nurl = "{url}"\n', encoding="utf-8")

    result = CliRunner().invoke(main, ["-c", str(config), "db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert "database is at the newest schema" in result.output
    assert snapshot(engine) == before
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_0_1_0}


# ----------------------------------------------------------------- fresh databases


def test_a_fresh_database_gets_the_core_and_each_enabled_branch(engine):
    migrate(engine, [livechat.migrations])

    assert tables(engine) == {*LIVECHAT_TABLES, *CORE_TABLES}
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_HEAD}
    assert schema_differences(engine) == []


def test_a_fresh_database_without_plugins_gets_the_core_tables_only(engine):
    migrate(engine)

    assert tables(engine) == CORE_TABLES
    assert version_rows(engine) == {CORE_HEAD}
    assert schema_differences(engine, core_only_metadata()) == []


# ------------------------------------------------- a disabled plugin, another upgraded


def test_upgrading_another_plugin_leaves_a_disabled_one_untouched(engine, tmp_path):
    build_with_release_0_1_0(engine)
    migrate(engine, [livechat.migrations])
    before, schema_before = snapshot(engine), livechat_schema(engine)
    probe = probe_plugin_branch(tmp_path / "probe")

    migrate(engine, [probe])  # probe newly enabled, livechat disabled

    assert "probe_notes" in tables(engine)
    assert snapshot(engine) == before
    assert livechat_schema(engine) == schema_before
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_HEAD, "probe_0001"}
    assert is_current(engine, [livechat.migrations, probe])


def test_a_failing_upgrade_changes_nothing_not_even_the_version_rows(engine, tmp_path):
    build_with_release_0_1_0(engine)
    before = snapshot(engine)
    probe = probe_plugin_branch(tmp_path / "probe", fails=True)

    with pytest.raises(Exception, match="no_such_column"):
        migrate(engine, [probe])  # livechat disabled, a legacy head to adopt, probe fails

    # One transaction: the legacy row not yet rewritten, livechat's row not lost.
    assert version_rows(engine) == {"0002_livechat"}
    assert "probe_notes" not in tables(engine)
    assert snapshot(engine) == before
    migrate(engine, [livechat.migrations])  # and the database is still upgradable
    assert snapshot(engine) == with_new_columns(before)
    assert schema_differences(engine) == []


# ------------------------------------------------------------ trainees -> attempts (0005)


def reflected_names(engine: Engine, table: str) -> set[str]:
    """Every name the database gives the table's key, foreign keys, uniques, checks and
    indexes (PostgreSQL also lists a unique constraint's index: same name)."""
    found = inspect(engine)
    names = {found.get_pk_constraint(table)["name"]}
    names |= {fk["name"] for fk in found.get_foreign_keys(table)}
    names |= {uq["name"] for uq in found.get_unique_constraints(table)}
    names |= {ck["name"] for ck in found.get_check_constraints(table)}
    names |= {ix["name"] for ix in found.get_indexes(table)}
    return names


def test_the_upgrade_renames_every_name_that_said_trainee(engine):
    build_with_release_0_1_0(engine)
    assert "ck_trainees_state" in reflected_names(engine, "trainees")  # checks are reflected

    migrate(engine, [livechat.migrations])

    found = inspect(engine)
    for name in sorted(LIVECHAT_TABLES):
        model = Base.metadata.tables[name]
        expected = {c.name for c in model.constraints} | {ix.name for ix in model.indexes}
        assert reflected_names(engine, name) == expected, name
        assert not [c["name"] for c in found.get_columns(name) if "trainee" in c["name"]]
    for child in ("vouches", "audit_events"):
        (fk,) = [
            fk
            for fk in found.get_foreign_keys(child)
            if fk["constrained_columns"] == ["attempt_id"]
        ]
        assert (fk["referred_table"], fk["referred_columns"]) == ("attempts", ["id"])
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            schema = conn.exec_driver_sql(
                "SELECT group_concat(sql, ';') FROM sqlite_master"
            ).scalar()
        else:
            assert conn.scalar(text("SELECT pg_get_serial_sequence('attempts', 'id')")) == (
                "public.attempts_id_seq"
            )
            schema = ""
    assert "trainee" not in schema


@pytest.mark.parametrize(
    "statement",
    [
        # a second open attempt for alice (attempt 2 is ready): the partial unique index
        "INSERT INTO attempts (person_id, state, state_since, registered_at, last_activity_at,"
        " sla_reminders) VALUES (3, 'training', :t, :t, :t, 0)",
        # a state that is none: the CHECK
        "UPDATE attempts SET state = 'bogus' WHERE id = 1",
        # a vouch for no attempt: the foreign key, to the renamed table
        "INSERT INTO vouches (attempt_id, voucher_id, created_at) VALUES (99, 1, :t)",
        "INSERT INTO audit_events (attempt_id, person_id, kind, at) VALUES (99, 1, 'x', :t)",
        # a second vouch by bob on attempt 2: the renamed unique constraint
        "INSERT INTO vouches (attempt_id, voucher_id, created_at) VALUES (2, 2, :t)",
    ],
    ids=["open-attempt", "state-check", "vouch-fk", "event-fk", "one-vouch"],
)
def test_the_rules_hold_on_the_renamed_tables(engine, statement):
    build_with_release_0_1_0(engine)
    migrate(engine, [livechat.migrations])
    before = snapshot(engine)

    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(statement), {"t": T0})

    assert snapshot(engine) == before
    # A closed attempt for alice is allowed: the index only covers open states.
    with engine.begin() as conn:
        conn.execute(
            text(statement.replace("'training'", "'withdrawn'") if "'training'" in statement
                 else "INSERT INTO attempts (person_id, state, state_since, registered_at,"
                      " last_activity_at, sla_reminders) VALUES (3, 'closed', :t, :t, :t, 0)"),
            {"t": T0},
        )  # fmt: skip


def test_the_rename_downgrades_to_the_old_names_and_upgrades_again(engine):
    build_with_release_0_1_0(engine)
    before, schema_before = snapshot(engine), livechat_schema(engine)
    migrate(engine, [livechat.migrations])

    command.downgrade(storage._alembic_config(engine, [livechat.migrations]), LIVECHAT_0_1_0)

    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_0_1_0}
    assert snapshot(engine) == before
    assert livechat_schema(engine) == schema_before  # names, keys, indexes, checks: all back
    migrate(engine, [livechat.migrations])
    assert snapshot(engine) == with_new_columns(before)
    assert version_rows(engine) == {CORE_HEAD, LIVECHAT_HEAD}
    assert schema_differences(engine) == []

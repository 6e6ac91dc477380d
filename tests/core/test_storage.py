"""The database: the SQLite settings are really in force, the migrations build exactly the
schema the models declare (on SQLite and on PostgreSQL), and a command is one transaction:
a handler that fails after writing leaves nothing behind and says nothing but its failure.

PostgreSQL is at 127.0.0.1:5432 (user postgres, trust auth); each test that uses it creates
a database of its own and drops it after, and is skipped when no server answers.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from ircbot_plugins.livechat import plugin as livechat
from ircbot_plugins.livechat.models import CLOSED, OPEN, Attempt, Person
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from ircbot import outbox
from ircbot.errors import Refusal
from ircbot.outbox import OutboxMessage
from ircbot.plugin import Plugin
from ircbot.storage import (
    Base,
    DatabaseBusy,
    begin,
    is_busy,
    make_engine,
    make_session_factory,
    migrate,
    optimistic,
    reading,
    transaction,
)
from tests.support.botthread import BotThread, bot_config
from tests.support.postgres import BACKENDS, database_url

pytestmark = pytest.mark.timeout(60)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> Iterator[str]:
    """An empty database of each backend, by URL."""
    yield from database_url(request.param, tmp_path, "storage")


@pytest.fixture
def engine(url):
    """The engine the bot would build, migrated to head the way the bot does it."""
    engine = make_engine(url)
    migrate(engine, [livechat.migrations])
    yield engine
    engine.dispose()


# ---------------------------------------------------------------------- SQLite settings


def pragmas(dbapi_conn) -> dict[str, object]:
    """The settings as SQLite reports them on a pooled DBAPI connection, outside any
    transaction."""
    cursor = dbapi_conn.cursor()
    try:
        return {
            name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    finally:
        cursor.close()


def test_sqlite_pragmas_hold_on_every_pooled_connection(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        # Two connections open at once: both are new, both went through the connect hook.
        first, second = engine.raw_connection(), engine.raw_connection()
        try:
            for conn in (first, second):
                assert pragmas(conn) == {
                    "journal_mode": "wal",
                    "foreign_keys": 1,
                    "busy_timeout": 2000,  # storage.make_engine: [database] busy_timeout, 2 s
                    "synchronous": 1,  # NORMAL, safe with WAL
                }
        finally:
            first.close()
            second.close()
    finally:
        engine.dispose()


def test_sqlite_in_memory_keeps_foreign_keys_and_busy_timeout():
    engine = make_engine("sqlite://")
    try:
        conn = engine.raw_connection()
        try:
            found = pragmas(conn)
        finally:
            conn.close()
        assert found["journal_mode"] == "memory"  # WAL has no meaning without a file
        assert found["foreign_keys"] == 1
        assert found["busy_timeout"] == 2000
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(engine):
    with pytest.raises(IntegrityError), transaction(make_session_factory(engine)) as session:
        session.add(attempt(person_id=424242, state=OPEN[0]))
        session.flush()


# ------------------------------------------------------------- models vs migrations


def test_the_migrations_build_exactly_what_the_models_declare(engine):
    assert {"outbox", "people", "attempts", "vouches", "audit_events"} <= set(
        Base.metadata.tables
    ), "a model module is not imported: the comparison would be meaningless"
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def person(identity: str) -> Person:
    return Person(identity=identity, created_at=NOW)


def attempt(person_id: int, state: str) -> Attempt:
    return Attempt(
        person_id=person_id,
        state=state,
        state_since=NOW,
        registered_at=NOW,
        last_activity_at=NOW,
    )


def test_one_open_attempt_per_person_is_enforced_by_the_partial_index(engine):
    # compare_metadata compares an index's columns and uniqueness but not its WHERE clause
    # (sqlite_where / postgresql_where): a migration that made uq_attempts_open_person a
    # plain unique index would pass the test above. What the WHERE means is checked here.
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        someone = person("partial-index")
        session.add(someone)
        session.flush()
        for state in CLOSED:  # any number of closed attempts...
            session.add(attempt(someone.id, state))
            session.add(attempt(someone.id, state))
        session.add(attempt(someone.id, OPEN[0]))  # ...beside one open attempt
        person_id = someone.id
    for state in OPEN:  # a second open attempt, whatever its state, is refused
        with pytest.raises(IntegrityError), transaction(factory) as session:
            session.add(attempt(person_id, state))
            session.flush()
    with transaction(factory) as session:
        count = session.scalar(select(func.count()).where(Attempt.person_id == person_id))
    assert count == 2 * len(CLOSED) + 1


# ------------------------------------------------------- one transaction per command

RECIPIENT = "~absent@127.0.0.1"  # nobody with this identity is on the server
txprobe = Plugin("txprobe")


@txprobe.command("notefail", help="Writes a durable message, then crashes.")
def _notefail(ctx) -> None:
    ctx.reply("this reply must never be sent")
    ctx.notify(RECIPIENT, "written by a command that crashed", ref="txprobe")
    ctx.session.flush()  # the INSERT has reached the database inside the transaction
    raise RuntimeError("crash after the write")


@txprobe.command("noterefuse", help="Writes a durable message, then refuses.")
def _noterefuse(ctx) -> None:
    ctx.reply("this reply must never be sent either")
    ctx.notify(RECIPIENT, "written by a command that refused", ref="txprobe")
    ctx.session.flush()
    raise Refusal("refused after the write")


@txprobe.command("noteok", help="Writes a durable message and succeeds.")
def _noteok(ctx) -> None:
    ctx.notify(RECIPIENT, "written by a command that succeeded", ref="txprobe")
    ctx.reply("noted")


def outbox_texts(bot: BotThread) -> list[str]:
    """The probe's outbox rows, read on the bot's thread after its current turn."""

    def read() -> list[str]:
        with transaction(bot.bot.session_factory) as session:
            rows = session.scalars(select(OutboxMessage.text).where(OutboxMessage.ref == "txprobe"))
            return list(rows)

    return bot.call(read)


def test_a_command_that_fails_after_writing_leaves_no_row_and_sends_no_reply(
    url, scripted_server, tmp_path
):
    config = bot_config(scripted_server.host, scripted_server.port, url)
    bot = BotThread(config, extra_plugins=[txprobe]).start(wait_joined=False)
    server = scripted_server
    try:
        server.expect_line(r"^CAP LS 302$")
        server.send(":irc.test CAP * LS :")
        server.expect_line(r"^CAP END$", skip=True)
        server.send(":irc.test 001 lcbot :Welcome")
        server.expect_line(r"^JOIN #livechat$")

        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!notefail")
        server.expect_line(
            r"^PRIVMSG #livechat :amy: Sorry, !notefail failed; the error is logged\.$"
        )
        assert outbox_texts(bot) == []

        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!noterefuse")
        server.expect_line(r"^PRIVMSG #livechat :amy: refused after the write$")
        assert outbox_texts(bot) == []

        # The same write in a command that succeeds is kept: the probe does write.
        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!noteok")
        server.expect_line(r"^PRIVMSG #livechat :amy: noted$")
        assert outbox_texts(bot) == ["written by a command that succeeded"]
        assert not any("never be sent" in line for line in server.lines)
    finally:
        server.close_client()
        bot.stop()
    outside = make_engine(url)  # and from outside the bot, once it has stopped
    try:
        with outside.connect() as conn:
            texts = conn.execute(text("SELECT text FROM outbox WHERE ref = 'txprobe'"))
            assert list(texts.scalars()) == ["written by a command that succeeded"]
    finally:
        outside.dispose()


# ------------------------------------------------------------- reads, writes and busy


def test_a_command_that_loses_the_race_to_write_runs_again_whole(tmp_path):
    """SQLite: a deferred unit whose snapshot went stale (someone committed after it read)
    cannot write; it is rolled back and run once more with the write lock taken first, and
    what it computed the first time is not what it writes. (PostgreSQL reads committed rows
    at each statement; the workflow serialises there with row locks, FOR UPDATE.)"""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engine = make_engine(url)
    migrate(engine)
    factory = make_session_factory(engine)
    other = make_session_factory(make_engine(url))
    attempts: list[bool] = []

    def count_then_write(write: bool) -> int:
        attempts.append(write)
        session = begin(factory, write=write)
        try:
            seen = session.scalar(select(func.count()).select_from(OutboxMessage))
            if len(attempts) == 1:  # another program commits between our read and our write
                with transaction(other) as outside:
                    outbox.enqueue(outside, "someone", "committed meanwhile", now=NOW)
            outbox.enqueue(session, "me", f"I saw {seen}", now=NOW)
            session.commit()
            return seen
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    try:
        seen = optimistic(factory, count_then_write)
        with reading(factory) as session:
            texts = sorted(session.scalars(select(OutboxMessage.text)))
    finally:
        other.kw["bind"].dispose()
        engine.dispose()
    assert texts == ["I saw 1", "committed meanwhile"]
    assert seen == 1
    assert attempts == [False, True]  # stale snapshot: the whole unit again, locked


def test_busy_is_told_apart_from_bugs(url, engine):
    factory = make_session_factory(engine)
    assert not is_busy(RuntimeError("a bug"))
    if not url.startswith("sqlite"):
        return
    path = url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with reading(factory) as session:  # a read does not wait for the writer
            assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        with pytest.raises(OperationalError) as caught, transaction(factory) as session:
            session.execute(text("SELECT 1"))
        assert is_busy(caught.value)
        with pytest.raises(DatabaseBusy):
            optimistic(factory, lambda write: _write_one(factory, write))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _write_one(factory, write: bool) -> None:
    with transaction(factory) if write else reading(factory) as session:
        outbox.enqueue(session, "me", "one", now=NOW)
        session.flush()


def test_prune_deletes_only_old_delivered_and_cancelled_rows(engine):
    factory = make_session_factory(engine)
    old, recent = NOW - dt.timedelta(days=91), NOW - dt.timedelta(days=89)
    with transaction(factory) as session:
        for i in range(7):
            session.add(
                OutboxMessage(
                    recipient="x", text=f"old delivered {i}", created_at=old, delivered_at=old
                )
            )
        session.add(
            OutboxMessage(recipient="x", text="old cancelled", created_at=old, cancelled_at=old)
        )
        session.add(
            OutboxMessage(
                recipient="x", text="recent delivered", created_at=recent, delivered_at=recent
            )
        )
        session.add(OutboxMessage(recipient="x", text="old pending", created_at=old))
    cutoff = NOW - dt.timedelta(days=90)
    batches = []
    while True:
        with transaction(factory) as session:
            batches.append(outbox.prune(session, before=cutoff, limit=3))
        if batches[-1] < 3:
            break
    assert batches == [3, 3, 2]
    with reading(factory) as session:
        left = sorted(session.scalars(select(OutboxMessage.text)))
    assert left == ["old pending", "recent delivered"]

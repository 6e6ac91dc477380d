"""No stall on a database lock held by someone else, on a real ngircd and both backends.

Another program holds a lock the bot would need: on SQLite an open write transaction
(``BEGIN IMMEDIATE`` and an insert, not committed), on PostgreSQL a row lock on the trainee
row a vouch must lock (``SELECT ... FOR UPDATE``). Meanwhile ``!status``, a read, is answered
at once, and ``!vouch`` is answered "the database is busy" after the short lock wait
(``[database] busy_timeout`` / ``lock_timeout``, 2 s) with nothing of it written: no vouch,
no audit event, no outbox message. Once the lock is gone the same vouch goes through, and
the records show exactly one of each.

The shell: with the SQLite write lock taken, a reading command runs without waiting, and a
writing one says "waiting for the database lock..." on stderr, then either finishes once the
lock is released or gives up cleanly (exit code 1, nothing changed) after its
``[database] cli_timeout``.

The lock is held only until the bot has answered (a longer hold proves nothing more:
``bench/contention.py`` holds it and prints the figures). The bounds are generous: the
point is "seconds, not the 30 s of before".
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ircbot_plugins.livechat.models import Attempt, Event, Person, Vouch
from sqlalchemy import func, select

from ircbot.outbox import OutboxMessage
from ircbot.storage import make_engine, make_session_factory, reading
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient
from tests.support.ngircd import NgircdServer

from .conftest import Database

pytestmark = pytest.mark.timeout(90)

BOT = "busybot"
CHAN = "#busy"
TRAINEE, HELPER = "busy_trainee", "busy_helper"
IDENTS = {TRAINEE: "bztrain", HELPER: "bzhelp"}
BUSY = "the database is busy, try again in a moment"
# Generous on a loaded 2-core machine: the bot's own wait is 2 s (busy/lock timeout).
READ_BOUND = 2.5
WRITE_BOUND = 4.5
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def outside_lock(db: Database) -> Iterator[None]:
    """Another program holds the lock a vouch needs until the block ends (then rolls back)."""
    if db.backend == "sqlite":
        path = db.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO outbox (recipient, text, kind, created_at) "
            "VALUES ('outside', 'held', 'message', '2026-01-01 00:00:00')"
        )
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    conn = psycopg.connect(db.url)  # a transaction is open from the first statement
    try:
        locked = conn.execute(
            "SELECT t.id FROM attempts t JOIN people p ON p.id = t.person_id "
            "WHERE p.identity = %s FOR UPDATE OF t",
            (f"~{IDENTS[TRAINEE]}@127.0.0.1",),
        ).fetchall()
        assert len(locked) == 1, "the row the vouch needs must be the one locked"
        yield
    finally:
        conn.rollback()
        conn.close()


def said(client: IRCTestClient, text: str, timeout: float = 10) -> tuple[str, float]:
    """``client`` says ``text`` in the channel: the bot's answer there and how long it took."""
    prefix = f"{client.current_nick}: "
    before = {id(m) for m in client.messages}
    started = time.monotonic()
    client.say(CHAN, text)
    while True:
        reply = client.expect(rf"^{prefix}", source=BOT, target=CHAN, timeout=timeout)
        if id(reply) not in before:
            return reply.text[len(prefix) :], time.monotonic() - started


def records(db: Database) -> dict[str, Any]:
    """What the database holds about the trainee, read from outside the bot (no lock)."""
    engine = make_engine(db.url)
    try:
        with reading(make_session_factory(engine)) as session:
            vouches = session.scalar(select(func.count()).select_from(Vouch))
            vouched = session.scalar(
                select(func.count()).select_from(Event).where(Event.kind == "vouched")
            )
            state = session.scalar(
                select(Attempt.state)
                .join(Person, Person.id == Attempt.person_id)
                .where(Person.identity == f"~{IDENTS[TRAINEE]}@127.0.0.1")
            )
            told = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.text.like("%vouched for you%"))
            )
            outside = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.recipient == "outside")
            )
        return {
            "vouches": vouches,
            "vouched_events": vouched,
            "state": state,
            "told": told,
            "outside": outside,
        }
    finally:
        engine.dispose()


@pytest.fixture
def room(db: Database, ngircd: NgircdServer) -> Iterator[dict[str, IRCTestClient]]:
    """The bot with default database timeouts, a helper (by mask) and a trainee."""
    config = bot_config(
        ngircd.host,
        ngircd.port,
        db.url,
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"plugins": ["livechat"], "user_burst": 100, "user_rate": 10.0},
        livechat={"threshold": 2, "helpers": [f"*!~{IDENTS[HELPER]}@127.0.0.1"]},
    )
    clients: dict[str, IRCTestClient] = {}
    with BotThread(config):
        try:
            for nick, ident in IDENTS.items():
                clients[nick] = IRCTestClient.connect(ngircd.host, ngircd.port, nick, user=ident)
                clients[nick].join(CHAN)
            yield clients
        finally:
            for client in clients.values():
                client.quit(timeout=1)


def test_a_lock_held_elsewhere_stalls_nobody_and_half_writes_nothing(
    db: Database, room: dict[str, IRCTestClient]
) -> None:
    trainee, helper = room[TRAINEE], room[HELPER]
    answer, _ = said(trainee, "!newhelper")
    assert answer.startswith("welcome!"), answer
    # Both have spoken before the lock: what the bot notes of a speaker is already written.
    answer, _ = said(helper, f"!status {TRAINEE}")
    assert "in training" in answer and "0/2" in answer, answer

    with outside_lock(db):
        answer, status_took = said(trainee, "!status")
        assert "0/2" in answer, answer
        assert status_took < READ_BOUND, f"!status took {status_took:.2f} s under the lock"

        answer, vouch_took = said(helper, f"!vouch {TRAINEE} shadowed two chats")
        assert answer == BUSY, answer
        assert vouch_took < WRITE_BOUND, f"!vouch took {vouch_took:.2f} s under the lock"

        # Still serving while the lock is held: the marker of "nothing else went wrong".
        answer, _ = said(trainee, "!status")
        assert "0/2" in answer, answer

    nothing = records(db)
    assert nothing == {
        "vouches": 0,
        "vouched_events": 0,
        "state": "training",
        "told": 0,
        "outside": 0,
    }, "the busy !vouch left something behind"

    answer, _ = said(helper, f"!vouch {TRAINEE} shadowed two chats")
    assert answer == f"vouched for {TRAINEE}: 1/2, training", answer
    assert records(db) == {
        "vouches": 1,
        "vouched_events": 1,
        "state": "training",
        "told": 1,
        "outside": 0,
    }


# -- the shell -------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database with a trainee ready to promote and a coordinator."""
    from ircbot_plugins.livechat import plugin as livechat

    from ircbot.clock import ManualClock
    from ircbot.storage import migrate

    from .conftest import Team

    url = f"sqlite:///{tmp_path / 'shell.db'}"
    engine = make_engine(url)
    try:
        migrate(engine, [livechat.migrations])
        db = Database("sqlite", url, engine, make_session_factory(engine))
        from ircbot_plugins.livechat.config import LivechatConfig
        from ircbot_plugins.livechat.roles import Role

        team = Team(db, ManualClock(), LivechatConfig(threshold=1))
        team.add("carol", Role.COORDINATOR)
        team.add("bob", Role.HELPER)
        team.register("alice")
        team.vouch("bob", "alice")
        yield db
    finally:
        engine.dispose()


def shell(db: Database, tmp_path: Path, *args: str, cli_timeout: float) -> subprocess.Popen:
    config = tmp_path / "shell.toml"
    config.write_text(
        f'[database]\nurl = "{db.url}"\ncli_timeout = {cli_timeout}\n', encoding="utf-8"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "ircbot", "-c", str(config), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def state_of(db: Database, identity: str) -> str | None:
    with reading(db.factory) as session:
        return session.scalar(
            select(Attempt.state)
            .join(Person, Person.id == Attempt.person_id)
            .where(Person.identity == identity)
        )


def test_the_shell_reads_without_waiting_and_a_write_says_it_waits(
    sqlite_db: Database, tmp_path: Path
) -> None:
    db = sqlite_db
    with outside_lock(db):
        listing = shell(db, tmp_path, "trainee", "list", cli_timeout=60)
        out, err = listing.communicate(timeout=30)
        assert listing.returncode == 0, err
        assert "alice" in out and "ready" in out
        assert "waiting" not in err

        # A write that cannot get the lock in time: said, then a clean failure.
        given_up = shell(
            db, tmp_path, "trainee", "promote", "alice", "--by", "carol", cli_timeout=1
        )
        out, err = given_up.communicate(timeout=30)
        assert given_up.returncode == 1, (out, err)
        assert "waiting for the database lock..." in err
        assert "the database is busy" in err and "nothing was changed" in err
        assert "Traceback" not in err
        assert out == ""

        # A write that waits and gets the lock once the other program lets go.
        waiter = shell(db, tmp_path, "trainee", "promote", "alice", "--by", "carol", cli_timeout=60)
        assert waiter.stderr is not None
        assert waiter.stderr.readline().strip() == "waiting for the database lock..."
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert "alice is now a helper" in out
    assert state_of(db, "alice") == "promoted"

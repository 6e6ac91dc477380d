"""Contention benchmark: the bot's answers while another program holds a database lock.

Run: ``python bench/contention.py [--hold 60] [--before REV] [--postgres]``. Starts its own
ngircd and the bot as a process (livechat plugin, hostmask mode, default database settings,
output flood limits opened),
a trainee and a helper. Then another connection takes the lock a vouch needs and holds it
for ``--hold`` seconds (or until every answer below has come, whichever is first): on SQLite
an open write transaction (``BEGIN IMMEDIATE`` and an insert), on PostgreSQL a row lock on
the trainee's row (``SELECT ... FOR UPDATE``). Meanwhile it measures:

* the trainee's ``!status`` (a read): time to the answer;
* the helper's ``!vouch`` (a write): time to the answer, and what it says;
* a bystander's ``!ping`` sent 0.5 s after the vouch: how long the whole bot was stalled;

and, once the lock is gone, whether anything of the vouch was half-written.

It does so for the code of this checkout ("after") and, with ``--before REV``, for the code
of git revision REV (extracted into a temporary folder and run from there: "before"). The
default ``--before`` is the revision before deferred reads.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import ROOT, BotUnderTest, NgircdServer, RawClient, cpu_note

# The output queue's flood limits are opened, as in bench/latency.py: what is measured is
# the database's share of the wait, not the throttle's (the database settings are defaults).
OPEN_LIMITS = {"flood_burst": 1000, "flood_rate": 1000.0}
CHAN = "#busy"
BOT = "busybot"
TRAINEE, HELPER, BYSTANDER = "bztrain", "bzhelp", "bzby"


def before_revision() -> str:
    """The parent of the commit that made reads deferred (this checkout's history)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-list", "-n1", "--grep=reads take no lock", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{found}^" if found else "HEAD"


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The code of ``rev`` in a temporary folder, importable as installed (PYTHONPATH)."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        (Path(folder) / "ircbot_plugins").symlink_to("plugins")
        (Path(folder) / "ircbot_migrations").symlink_to("alembic")
        yield Path(folder)


class OutsideLock:
    """Another connection holding the lock a vouch needs, released by :meth:`release`
    (from any thread: a timer lets go after ``--hold`` seconds)."""

    def __init__(self, url: str) -> None:
        self.lock = threading.Lock()
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(
                url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
            )
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT INTO outbox (recipient, text, kind, created_at) "
                "VALUES ('outside', 'held', 'message', '2026-01-01 00:00:00')"
            )
        else:
            import psycopg

            self.conn = psycopg.connect(url)
            self.conn.execute(
                "SELECT t.id FROM attempts t JOIN people p ON p.id = t.person_id "
                "WHERE p.identity = %s FOR UPDATE OF t",
                (f"~{TRAINEE}@127.0.0.1",),
            )
        self.taken = time.monotonic()
        self.held: float | None = None

    def release(self) -> None:
        with self.lock:
            if self.held is not None:
                return
            if self.sqlite:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()
            self.conn.close()
            self.held = time.monotonic() - self.taken


def ask(client: RawClient, text: str, timeout: float) -> tuple[str, float]:
    """Say ``text`` in the channel; the bot's answer to ``client`` and the seconds it took."""
    started = time.monotonic()
    client.send(f"PRIVMSG {CHAN} :{text}")
    return answer(client, started, timeout)


def answer(client: RawClient, started: float, timeout: float) -> tuple[str, float]:
    needle = f" PRIVMSG {CHAN} :{client.nick}: ".encode()
    try:
        for line in client.lines(timeout):
            if line.startswith(f":{BOT}!".encode()) and needle in line:
                text = line.split(needle, 1)[1].decode()
                return text, time.monotonic() - started
    except TimeoutError:
        pass
    return "(no answer)", time.monotonic() - started


def joined(client: RawClient) -> None:
    """Wait until the bot is in the channel (its JOIN, or its nick in the NAMES list)."""
    for line in client.lines(30):
        if line.startswith(f":{BOT}!".encode()) and b" JOIN " in line:
            return
        if b" 353 " in line and BOT.encode() in line:
            return


def half_written(url: str) -> str:
    """What the database holds of the vouch once the lock is gone."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            vouches = conn.execute(text("SELECT count(*) FROM vouches")).scalar()
            events = conn.execute(
                text("SELECT count(*) FROM audit_events WHERE kind = 'vouched'")
            ).scalar()
    finally:
        engine.dispose()
    return f"{vouches} vouch row(s), {events} 'vouched' event(s)"


def run(label: str, url: str, hold: float, code: Path | None) -> None:
    with NgircdServer() as server:
        bot = BotUnderTest(
            {
                "irc": {
                    "host": server.host,
                    "port": server.port,
                    "nick": BOT,
                    "channels": [CHAN],
                    **OPEN_LIMITS,
                },
                "bot": {"identity": "hostmask", "plugins": ["livechat"]},
                "database": {"url": url},
                "livechat": {"threshold": 2, "helpers": [f"*!~{HELPER}@127.0.0.1"]},
            }
        )
        saved = os.environ.get("PYTHONPATH")
        if code is not None:
            os.environ["PYTHONPATH"] = str(code)
        try:
            bot.start()
        finally:
            if code is not None:
                if saved is None:
                    del os.environ["PYTHONPATH"]
                else:
                    os.environ["PYTHONPATH"] = saved
        clients = []
        try:
            for nick in (TRAINEE, HELPER, BYSTANDER):
                client = RawClient(server.host, server.port, nick)
                client.send(f"JOIN {CHAN}")
                clients.append(client)
            trainee, helper, bystander = clients
            joined(trainee)
            got, _ = ask(trainee, "!newhelper", 10)
            assert got.startswith("welcome"), (got, bot.log_tail())
            got, _ = ask(helper, f"!status {TRAINEE}", 10)
            ask(bystander, "!ping", 10)
            outside = OutsideLock(url)
            timer = threading.Timer(hold, outside.release)
            timer.start()
            try:
                wait = hold + 40  # the old code waited 30 s per statement
                status, status_took = ask(trainee, "!status", wait)
                started = time.monotonic()
                helper.send(f"PRIVMSG {CHAN} :!vouch {TRAINEE} shadowed two chats")
                time.sleep(0.5)  # the bystander speaks half a second later
                pinged = time.monotonic()
                bystander.send(f"PRIVMSG {CHAN} :!ping")
                vouch, vouch_took = answer(helper, started, wait)
                _, ping_took = answer(bystander, pinged, wait)
            finally:
                timer.cancel()
                outside.release()  # at once if everything is answered before --hold
            held = outside.held or 0.0
            after = half_written(url)
        finally:
            for client in clients:
                with contextlib.suppress(OSError):
                    client.close()
            bot.cleanup()
    print(f"  {label}: lock held {held:.1f} s")
    print(f"    !status  {status_took:6.2f} s  {status!r}")
    print(f"    !vouch   {vouch_took:6.2f} s  {vouch!r}")
    print(f"    !ping    {ping_took:6.2f} s  (a bystander, sent 0.5 s after the vouch)")
    print(f"    after the lock: {after}")


@contextlib.contextmanager
def databases(use_postgres: bool) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="bench-contention-") as folder:
        found = [("SQLite", f"sqlite:///{Path(folder) / 'bot.db'}")]
        if use_postgres:
            from tests.support.postgres import postgres_available, postgres_database

            if postgres_available():
                with postgres_database("bench_contention") as url:
                    yield [*found, ("PostgreSQL", url)]
                    return
            print("PostgreSQL is not running on 127.0.0.1:5432: skipped")
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--before", default=None, help="git revision of the 'before' code")
    parser.add_argument("--no-before", action="store_true", help="measure this checkout only")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    print(f"contention benchmark ({cpu_note()}), lock held up to {args.hold:.0f} s")
    rev = None if args.no_before else (args.before or before_revision())
    with databases(args.postgres) as found:
        for name, url in found:
            print(f"\n== {name}")
            if rev is not None:
                with checkout(rev) as code:
                    run(f"before ({rev})", fresh_db(url, "before"), args.hold, code)
            run("after (this checkout)", fresh_db(url, "after"), args.hold, None)


def fresh_db(url: str, tag: str) -> str:
    """SQLite: a file per run. PostgreSQL: the same database, emptied by dropping its tables
    (the bot migrates it again at start)."""
    if url.startswith("sqlite"):
        return url.replace("bot.db", f"bot-{tag}.db")
    from sqlalchemy import MetaData, create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.begin() as conn:
            meta.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()
    return url


if __name__ == "__main__":
    main()

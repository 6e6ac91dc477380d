"""Outbox benchmark: what the delivery sweep and the prune cost with 100,000 pending rows.

Run: ``python bench/outbox.py [--rows 100000] [--members 0,10,100,1000] [--postgres]``. On a
SQLite file (and a fresh PostgreSQL database with ``--postgres``) migrated as the bot does:

* loading who has messages waiting (``Delivery.load``, once at start) with ``--rows`` pending
  rows, spread over as many recipients (the worst case) and over 1,000;
* one delivery sweep (``Delivery.sweep``, every ``[bot] away_poll``) with nobody reachable,
  for channels of ``--members`` members whose accounts the bot knows: one index lookup per
  pending recipient (the network state indexes users by account and ``user@host``), so it
  costs O(pending recipients) whatever the channel's size;
* the prune (``outbox.prune_expired``, hourly): one run that finds nothing to delete beside the
  pending rows (a scan of the outbox), and draining ``--rows`` old delivered/cancelled rows
  in the bot's batches (the longest single batch is the longest the write lock is held).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import cpu_note
from sqlalchemy import func, insert, select

from ircbot import outbox
from ircbot.clock import ManualClock
from ircbot.delivery import Delivery
from ircbot.identity_policy import AccountPolicy
from ircbot.network import NetworkState
from ircbot.outbox import PRUNE_BATCH, PRUNE_BATCHES
from ircbot.resolver import Resolver
from ircbot.storage import make_engine, make_session_factory, migrate, reading, transaction
from tests.support.postgres import postgres_available, postgres_database

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RETENTION = dt.timedelta(days=90)
MAX_PRODUCT = 10**9  # recipients x members past which a sweep is not tried


def fill(factory, rows: int, recipients: int, *, done: bool = False) -> None:
    """``rows`` pending rows (or, ``done``, old delivered/cancelled ones), in bulk."""
    old = NOW - RETENTION - dt.timedelta(days=1)
    chunk = 10_000
    for start in range(0, rows, chunk):
        values = []
        for i in range(start, min(rows, start + chunk)):
            row = {
                "recipient": f"acct{i % recipients}",
                "text": f"message {i}: someone is ready for promotion",
                "kind": "ping",
                "ref": f"trainee:{i}:ready",
                "created_at": old if done else NOW,
            }
            if done:
                row["delivered_at" if i % 2 else "cancelled_at"] = old
            values.append(row)
        with transaction(factory) as session:
            session.execute(insert(outbox.OutboxMessage), values)


def clear(factory) -> None:
    with transaction(factory) as session:
        session.query(outbox.OutboxMessage).delete()


def delivery_for(factory, members: int) -> Delivery:
    """A Delivery on a channel of ``members`` people the bot knows, none with mail waiting."""
    network = NetworkState(["#livechat"])
    network.caps = {"extended-join", "account-notify", "away-notify"}  # accounts are certain
    network.own_nick = "bot"
    network.on_join("bot", "bot", "127.0.0.1", "#livechat", None)
    for i in range(members):
        network.on_join(f"member{i}", f"m{i}", "127.0.0.1", "#livechat", f"member{i}")
    sent: list[str] = []
    resolver = Resolver(network, lambda line, on_sent=None: sent.append(line), time.monotonic, 5.0)
    return Delivery(
        factory,
        ManualClock(NOW),
        AccountPolicy(network),
        resolver,
        lambda *a: sent.append(a[2]),
        refresh=lambda: None,
    )


def timed(fn, repeat: int = 3) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def prune_run(factory) -> tuple[int, list[float]]:
    """One run as the bot makes it: rows deleted and each batch's seconds."""
    batches, total = [], 0
    cutoff = NOW - RETENTION
    for _ in range(PRUNE_BATCHES):
        t0 = time.perf_counter()
        with transaction(factory) as session:
            deleted = outbox.prune(session, before=cutoff, limit=PRUNE_BATCH)
        batches.append(time.perf_counter() - t0)
        total += deleted
        if deleted < PRUNE_BATCH:
            break
    return total, batches


def measure(name: str, url: str, rows: int, member_counts: list[int]) -> None:
    engine = make_engine(url)
    migrate(engine)
    factory = make_session_factory(engine)
    print(f"\n== {name}: {rows:,} pending rows")
    for recipients in (rows, 1000):
        clear(factory)
        fill(factory, rows, recipients)
        delivery = delivery_for(factory, 0)
        load = timed(delivery.load)
        print(
            f"  {recipients:>7,} recipients: load (pending_recipients) {load * 1000:8.1f} ms, "
            f"{len(delivery.pending):,} waiting"
        )
        for members in member_counts:
            if recipients * members > MAX_PRODUCT:
                print(f"      sweep, {members:>5,} channel members: not run (minutes)")
                continue
            delivery = delivery_for(factory, members)
            delivery.load()
            sweep = timed(delivery.sweep, repeat=1)
            per = sweep / len(delivery.pending) * 1e6
            print(
                f"      sweep, {members:>5,} channel members: {sweep * 1000:9.1f} ms "
                f"({per:.2f} us per waiting recipient)"
            )
    # The prune, beside the pending rows (recipients: the worst case).
    clear(factory)
    fill(factory, rows, rows)
    nothing = timed(lambda: prune_run(factory))
    print(f"  prune run, nothing to delete, beside {rows:,} pending: {nothing * 1000:.1f} ms")
    fill(factory, rows, rows, done=True)
    runs, deleted, longest, spent = 0, 0, 0.0, 0.0
    while True:
        n, batches = prune_run(factory)
        runs += 1
        deleted += n
        longest = max(longest, *batches)
        spent += sum(batches)
        if n < PRUNE_BATCH * PRUNE_BATCHES:
            break
    with reading(factory) as session:
        left = session.scalar(select(func.count()).select_from(outbox.OutboxMessage))
    print(
        f"  prune of {deleted:,} old rows: {runs} hourly runs of up to "
        f"{PRUNE_BATCH * PRUNE_BATCHES:,}, {spent:.2f} s in all, "
        f"{spent / runs * 1000:.0f} ms a run, longest batch (write lock held) "
        f"{longest * 1000:.1f} ms; {left:,} pending rows left"
    )
    engine.dispose()


@contextlib.contextmanager
def backends(use_postgres: bool) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
        found = [("SQLite", f"sqlite:///{Path(folder) / 'outbox.db'}")]
        if not use_postgres:
            yield found
            return
        if not postgres_available():
            print("PostgreSQL is not running on 127.0.0.1:5432: skipped", file=sys.stderr)
            yield found
            return
        with postgres_database("bench_outbox") as url:
            yield [*found, ("PostgreSQL", url)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--members", default="0,10,100,1000")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    members = [int(m) for m in args.members.split(",")]
    print(f"outbox benchmark ({cpu_note()})")
    with backends(args.postgres) as found:
        for name, url in found:
            measure(name, url, args.rows, members)


if __name__ == "__main__":
    main()

"""Livechat workflow benchmark: ``!vouch``, ``!ready`` and ``!status`` on a small and a large
database, beside the floor of the core latency benchmark, and the bot's memory on both.

Run: ``python bench/workflow.py`` (SQLite, then PostgreSQL at 127.0.0.1:5432, user postgres,
trust auth, in a database of its own that it drops; ``--database sqlite`` for one backend).
``--trainees 10000 --vouches 100000`` makes a quick run, ``--rounds`` sets how many timed
round trips each command gets. A full run takes a few minutes (about one to generate each
large database; the SQLite file is cached in the temp folder for the next runs).

What it does, per database backend:

1. Starts its own ngircd on loopback (flood penalty off), the bare-socket echo bot of
   ``latency.py`` (the floor) and the real bot as a process (``python -m ircbot run``) with
   the ``livechat`` plugin in hostmask identity mode: the coordinator and the helpers are
   ``nick!user@host`` masks in ``[livechat] coordinators``/``helpers``, as in the tests.
   The bot's output queue and per-user command limit are opened through their config keys
   (``flood_burst``/``flood_rate``, ``user_burst``/``user_rate``): the figures are the cost
   of our code, not of the throttle.
2. A nearly empty database (a small team and 25 ready trainees, so that ``!ready`` answers
   with the same 20 lines plus "and N more" as on the large one). Clients join ``#livechat``
   as the coordinator, two helpers, 20 trainees (who say ``!newhelper``) and a bystander,
   then time sequential round trips by private message (one command in flight, after a
   warm-up), from sending the command to the reply line that completes it:

   * ``!ping`` to the floor and to the bot, as in ``latency.py``;
   * ``!vouch T`` then ``!unvouch T`` by a helper over 10 trainees, alternately, so that
     every vouch is a state change (the withdrawn vouch counts again: its audit event, the
     trainee's outbox note), below the threshold: no coordinator is pinged;
   * the same over 10 trainees who hold one vouch from another helper: each ``!vouch``
     reaches the threshold (ready: a ping in every coordinator's outbox, delivered to the one
     online, named in the channel) and each ``!unvouch`` takes them back (pings cancelled);
     also timed, from the same ``!vouch``: until the coordinator online has the ping;
   * ``!ready`` by the coordinator, timed to its last line;
   * ``!status T`` of a trainee online, and of a nick nobody holds now (the bot asks the
     server with a WHOIS, then finds who used the nick last).

   A command's consequences (outbox deliveries, which the bot sends after a WHOIS since
   ngircd has no ``away-notify``) are awaited, untimed, before the next command is sent.
3. The large database, then the same sequence: 100,000 trainee attempts (most promoted or
   closed, 5 % in training, 300 ready, a few on hold; some people on a second attempt),
   1,000,000 vouches spread over them (a few retracted, some by former helpers), a team of
   400 helpers, 600 former helpers and 5 coordinators (low ids, as a team seeded from the
   config; the bench's own helpers are newer), the audit events the workflow writes for all
   of it, and the outbox rows of the pings and trainee messages (not the per-vouch notes,
   to keep the generation short). The schema is the migrations' (``ircbot.storage.migrate``,
   as the bot runs it); the rows go in by SQLAlchemy Core ``executemany`` batches on SQLite
   and by ``COPY`` on PostgreSQL (then ``VACUUM ANALYZE``, as autovacuum would, and a
   ``CHECKPOINT``). Timestamps keep every reminder and idle timer quiet during the run.

The test clients acknowledge every segment at once (``TCP_QUICKACK``): ngircd does not set
``TCP_NODELAY``, and a reply of many lines would otherwise wait ~40 ms for the client's
delayed ACK, a cost of the harness, not of the bot.

Targets (2-core machine): on the large database ``!ready``, ``!status`` and ``!vouch`` each
under 20 ms, at p50 and at p99; the bot's resident memory after the sequence within 10 MB of
the same sequence on the nearly empty database. The figures are printed with PASS or FAIL
beside each target; nothing is asserted, since a busy machine can make any run noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import heapq
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import BotUnderTest, NgircdServer, RawClient, cpu_note, percentiles, rss_mb
from ircbot_plugins.livechat import plugin as livechat
from ircbot_plugins.livechat.models import (
    CLOSED_IDLE,
    ON_HOLD,
    PROMOTED,
    READY,
    REJECTED,
    TRAINING,
    WITHDRAWN,
)
from ircbot_plugins.livechat.roles import Role
from sqlalchemy import Engine, Table, func, select

from ircbot.outbox import OutboxMessage
from ircbot.storage import Base, make_engine, migrate, migrations_path

BOT = "benchbot"
FLOOR = "floorbot"
CHANNEL = "#livechat"
TARGET_MS = 20.0
MEMORY_TARGET_MB = 10.0
PAGE_SIZE = 20  # [livechat] page_size: !ready lists this many, then "and N more"
POOL = 10  # trainees per pool (vouch below the threshold / vouch reaching it)
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
CACHE_HOURS = 4.0  # generated timestamps keep every timer quiet for longer than this
GENERATOR_VERSION = 2

OPEN_LIMITS = {"flood_burst": 100000, "flood_rate": 100000.0}
OPEN_USER = {"user_burst": 100000, "user_rate": 100000.0}

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)

NOTES = (
    None,
    None,
    "good with upset users",
    "calm and accurate",
    "shadowed three chats, took the last one alone",
    "knows the billing questions",
    "clear, kind answers",
)
CLOSE_REASONS = ("not enough time right now", "moving to another team", "withdrew")
REJECT_REASONS = ("not ready: rushes the answers", "copied answers without checking", "no-show")
HOLD_REASONS = ("waiting for the chat account", "on a break until next month")


# -- the data set ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How large a database to generate; the same plan and seed give the same rows."""

    trainees: int
    vouches: int
    ready: int
    helpers: int
    former_helpers: int
    coordinators: int
    seed: int = 20261125

    @property
    def key(self) -> str:
        """Names the cached file: the parameters, the generator and the schema's migrations."""
        folders = (migrations_path() / "versions", livechat.migrations)
        versions = sorted(p.stem for folder in folders for p in folder.glob("*.py"))
        schema = hashlib.sha1(" ".join(versions).encode()).hexdigest()[:8]
        return (
            f"t{self.trainees}-v{self.vouches}-r{self.ready}-h{self.helpers}"
            f"-f{self.former_helpers}-c{self.coordinators}-s{self.seed}-g{GENERATOR_VERSION}"
            f"-{schema}"
        )

    def describe(self) -> str:
        return (
            f"{self.trainees:,} trainees ({self.ready} ready), {self.vouches:,} vouches, "
            f"{self.helpers} helpers, {self.former_helpers} former helpers, "
            f"{self.coordinators} coordinators"
        )


SMALL = Plan(trainees=25, vouches=75, ready=25, helpers=5, former_helpers=2, coordinators=2)


def large_plan(trainees: int, vouches: int) -> Plan:
    """The large database: a few hundred ready, a few hundred helpers."""
    ready = min(trainees, 300, max(PAGE_SIZE + 5, trainees // 100))
    return Plan(trainees, vouches, ready, helpers=400, former_helpers=600, coordinators=5)


@dataclass(slots=True)
class Attempt:
    """One generated trainee attempt: its state, its times and how many vouches it gets."""

    state: str
    registered: dt.datetime
    last_activity: dt.datetime
    state_since: dt.datetime
    vouches: int
    ready_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    by: int | None = None  # the coordinator who promoted, held or rejected
    reason: str | None = None
    idle_reminded: dt.datetime | None = None
    sla_reminded: dt.datetime | None = None
    sla_reminders: int = 0
    chat: str | None = None
    id: int = 0
    person: int = 0


@dataclass
class Dataset:
    """The generated rows before they are written: staff, trainee people and attempts."""

    plan: Plan
    now: dt.datetime
    coordinators: list[int]
    helpers: list[int]
    former: list[int]
    people: list[tuple] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    left_team: dict[int, dt.datetime] = field(default_factory=dict)  # promoted, then left


PEOPLE = Base.metadata.tables["people"]
ATTEMPTS = Base.metadata.tables["attempts"]
VOUCHES = Base.metadata.tables["vouches"]
EVENTS = Base.metadata.tables["audit_events"]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]

COLUMNS: dict[str, tuple[str, ...]] = {
    "people": (
        "id",
        "identity",
        "role",
        "role_manual",
        "last_nick",
        "nick_key",
        "created_at",
        "last_seen_at",
    ),
    "attempts": (
        "id",
        "person_id",
        "state",
        "state_since",
        "chat_account",
        "registered_at",
        "ready_at",
        "promoted_at",
        "promoted_by_id",
        "hold_reason",
        "held_by_id",
        "closed_at",
        "closed_by_id",
        "close_reason",
        "last_activity_at",
        "idle_reminded_at",
        "sla_reminded_at",
        "sla_reminders",
    ),
    # ids left to the database: nothing refers to these rows
    "vouches": ("attempt_id", "voucher_id", "note", "created_at", "retracted_at"),
    "audit_events": ("attempt_id", "person_id", "actor_id", "kind", "detail", "at"),
    "outbox": ("recipient", "text", "kind", "ref", "created_at", "delivered_at", "cancelled_at"),
}


def _closed_states(rng: random.Random, n: int) -> list[str]:
    weights = ((PROMOTED, 0.62), (CLOSED_IDLE, 0.20), (WITHDRAWN, 0.11), (REJECTED, 0.07))
    return rng.choices([s for s, _ in weights], [w for _, w in weights], k=n)


def _attempt(state: str, rng: random.Random, now: dt.datetime, coords: list[int]) -> Attempt:
    """Times and a vouch count for one attempt in ``state``, consistent with the rules."""
    u = rng.uniform
    if state == TRAINING:
        k = rng.choice((0, 0, 1, 1, 1, 2, 3))  # at most one of them counts (see _vouchers)
        reminded = None
        if rng.random() < 0.1:  # reminded once for being idle, not yet closed
            last = now - u(15, 25) * DAY
            reminded = last + 14 * DAY
        else:
            last = now - u(0.02, 12) * DAY
        registered = last - u(0.5, 20) * DAY if k else last
        return Attempt(state, registered, last, registered, k, idle_reminded=reminded)
    if state == READY:
        if rng.random() < 0.7:
            age, reminded, n = u(0.1, 18), None, 0
        else:  # overdue, reminded a little while ago: the next reminder is hours away
            age = u(26, 72)
            ago_h = u(0, min(6, age - 24))
            reminded = now - ago_h * HOUR
            n = 1 + int((age - 24 - ago_h) / 12)
        ready = now - age * HOUR
        registered = ready - u(1, 30) * DAY
        return Attempt(
            state,
            registered,
            ready,
            ready,
            rng.randint(2, 6),
            ready_at=ready,
            sla_reminded=reminded,
            sla_reminders=n,
        )
    if state == ON_HOLD:
        k = rng.randint(0, 4)
        registered = now - u(10, 200) * DAY
        since = registered + u(1, 9) * DAY
        a = Attempt(state, registered, since if k else registered, since, k)
        a.by, a.reason = rng.choice(coords), rng.choice(HOLD_REASONS)
        return a
    registered = now - u(70, 5 * 365) * DAY
    if state == PROMOTED:
        ready = registered + u(1, 40) * DAY
        waited = u(0.5, 40)
        promoted = ready + waited * HOUR
        a = Attempt(state, registered, ready, promoted, rng.randint(2, 28), ready_at=ready)
        a.closed_at, a.by = promoted, rng.choice(coords)
        if waited > 24:
            a.sla_reminders = 1 + int((waited - 24) / 12)
            a.sla_reminded = ready + 24 * HOUR + (a.sla_reminders - 1) * 12 * HOUR
        return a
    if state == CLOSED_IDLE:
        k = rng.choice((0, 0, 1))
        last = registered + u(0, 10) * DAY if k else registered
        closed = last + 28 * DAY
        a = Attempt(state, registered, last, closed, k, closed_at=closed)
        a.idle_reminded, a.reason = last + 14 * DAY, "idle: no vouch for 28 days"
        return a
    k = rng.randint(0, 1) if state == WITHDRAWN else rng.randint(0, 3)
    span = u(0.05, 30) if state == WITHDRAWN else u(5, 60)
    closed = registered + span * DAY
    last = registered + (closed - registered) * u(0.2, 1) if k else registered
    a = Attempt(state, registered, last, closed, k, closed_at=closed)
    if state == REJECTED:
        a.by, a.reason = rng.choice(coords), rng.choice(REJECT_REASONS)
    else:
        a.reason = rng.choice(CLOSE_REASONS)
    return a


def _fit_vouches(attempts: list[Attempt], total: int, most: int, rng: random.Random) -> None:
    """Scale the vouch counts of promoted (else ready) attempts so the total is exact."""
    adjustable = [a for a in attempts if a.state == PROMOTED] or [
        a for a in attempts if a.state == READY
    ]
    for _ in range(20):
        diff = total - sum(a.vouches for a in attempts)
        if diff == 0 or not adjustable:
            return
        rng.shuffle(adjustable)
        step, extra = divmod(abs(diff), len(adjustable))
        sign = 1 if diff > 0 else -1
        for i, a in enumerate(adjustable):
            a.vouches = min(most, max(2, a.vouches + sign * (step + (i < extra))))


def build(plan: Plan, now: dt.datetime) -> Dataset:
    """Generate the people and attempts of ``plan`` (vouches and the rest come from rows())."""
    rng = random.Random(plan.seed)
    next_id = iter(range(1, 10**9))
    coords = [next(next_id) for _ in range(plan.coordinators)]
    helpers = [next(next_id) for _ in range(plan.helpers)]
    former = [next(next_id) for _ in range(plan.former_helpers)]
    data = Dataset(plan, now, coords, helpers, former)
    for ids, name, role, manual in (
        (coords, "coord", Role.COORDINATOR, True),
        (helpers, "helper", Role.HELPER, False),
        (former, "oldhelper", Role.NONE, True),
    ):
        for n, pid in enumerate(ids, 1):
            nick = f"{name}{n:03d}"
            since = now - rng.uniform(400, 3000) * DAY
            seen = now - rng.uniform(0, 30 if role else 900) * DAY
            data.people.append(
                (pid, f"~{nick}@staff.example.net", int(role), manual, nick, nick, since, seen)
            )

    n_ready = min(plan.ready, plan.trainees)
    rest = plan.trainees - n_ready
    n_hold, n_training = round(rest * 0.002), round(rest * 0.05)
    states = [READY] * n_ready + [ON_HOLD] * n_hold + [TRAINING] * n_training
    states += _closed_states(rng, rest - n_hold - n_training)
    attempts = [_attempt(s, rng, now, coords) for s in states]
    _fit_vouches(attempts, plan.vouches, plan.helpers + plan.former_helpers, rng)
    attempts.sort(key=lambda a: a.registered)

    # People: one per attempt, except that some who withdrew, were rejected or went idle
    # come back later for a second attempt (never more than one open attempt each).
    back: list[tuple[dt.datetime, int]] = []  # (closed_at, person) who may come back
    free: list[int] = []
    last_of: dict[int, Attempt] = {}
    first_seen: dict[int, dt.datetime] = {}
    trainee_people = 0
    for tid, a in enumerate(attempts, 1):
        a.id = tid
        while back and back[0][0] < a.registered:
            free.append(heapq.heappop(back)[1])
        if free and rng.random() < 0.1:
            a.person = free.pop(rng.randrange(len(free)))
        else:
            trainee_people += 1
            a.person = plan.coordinators + plan.helpers + plan.former_helpers + trainee_people
            first_seen[a.person] = a.registered
        last_of[a.person] = a
        if a.state in (WITHDRAWN, REJECTED, CLOSED_IDLE):
            assert a.closed_at is not None
            heapq.heappush(back, (a.closed_at, a.person))
        if rng.random() < 0.6:
            a.chat = f"chat_{a.person}"
        if a.state == WITHDRAWN:
            a.by = a.person
    promoted = sorted(
        (a for a in last_of.values() if a.state == PROMOTED),
        key=lambda a: a.closed_at or now,
    )
    still_helpers = {a.person for a in promoted[-100:]}
    for pid, a in sorted(last_of.items()):
        n = pid - plan.coordinators - plan.helpers - plan.former_helpers
        nick = f"tr{n:06d}"
        manual = False
        if a.state in (TRAINING, READY, ON_HOLD):
            role = Role.TRAINEE
        elif a.state == PROMOTED and pid in still_helpers:
            role = Role.HELPER
        elif a.state == PROMOTED:  # promoted, and since left the team
            role, manual = Role.NONE, True
            assert a.closed_at is not None
            data.left_team[pid] = min(now - DAY, a.closed_at + rng.uniform(30, 700) * DAY)
        else:
            role = Role.NONE
        seen = max(a.last_activity, a.closed_at or a.last_activity)
        data.people.append(
            (
                pid,
                f"~{nick}@users.example.net",
                int(role),
                manual,
                nick,
                nick,
                first_seen[pid],
                seen,
            )
        )
    data.attempts = attempts
    return data


def attempt_rows(data: Dataset) -> Iterator[tuple]:
    for a in data.attempts:
        promoted = a.state == PROMOTED
        yield (
            a.id,
            a.person,
            a.state,
            a.state_since,
            a.chat,
            a.registered,
            a.ready_at,
            a.closed_at if promoted else None,
            a.by if promoted else None,
            a.reason if a.state == ON_HOLD else None,
            a.by if a.state == ON_HOLD else None,
            a.closed_at,
            a.by if a.closed_at else None,
            a.reason if a.closed_at and not promoted else None,
            a.last_activity,
            a.idle_reminded,
            a.sla_reminded,
            a.sla_reminders,
        )


def _vouchers(data: Dataset, a: Attempt, rng: random.Random) -> list[tuple[int, bool]]:
    """Who vouched for ``a``, and whether each vouch was later retracted."""
    k = a.vouches
    if k == 0:
        return []
    if a.state == TRAINING:  # one vouch that counts; the rest don't (former or retracted)
        first = rng.choice(data.helpers)
        extra = k - 1
        if data.former and extra <= len(data.former):
            return [(first, False)] + [(f, False) for f in rng.sample(data.former, extra)]
        others = [h for h in data.helpers if h != first]
        return [(first, False)] + [(h, True) for h in rng.sample(others, min(extra, len(others)))]
    if a.state in (READY, ON_HOLD):
        return [(h, False) for h in rng.sample(data.helpers, min(k, len(data.helpers)))]
    pool = data.helpers + data.former
    return [(p, rng.random() < 0.03) for p in rng.sample(pool, min(k, len(pool)))]


def rows(data: Dataset) -> Iterator[tuple[str, tuple]]:
    """Vouches, audit events and outbox rows, attempt by attempt, in time order."""
    rng = random.Random(data.plan.seed + 1)
    now = data.now
    coords = data.coordinators
    key = {p[0]: p[1] for p in data.people[: len(coords) + len(data.helpers)]}
    nick_of = {p[0]: p[4] for p in data.people}

    def event(
        at: dt.datetime,
        kind: str,
        person: int,
        actor: int | None,
        detail: str | None = None,
        tid: int | None = None,
    ) -> tuple[str, tuple]:
        return "audit_events", (tid, person, actor, kind, detail, at)

    def message(
        to: str, body: str, kind: str, ref: str, at: dt.datetime, state: str
    ) -> tuple[str, tuple]:
        delivered = at + rng.uniform(0.01, 10) * HOUR if state == "delivered" else None
        cancelled = at + rng.uniform(0.01, 10) * HOUR if state == "cancelled" else None
        return "outbox", (to, body, kind, ref, at, delivered, cancelled)

    for pid, _identity, role, *_ in data.people[: len(coords) + len(data.helpers)]:
        label = Role(role).label
        yield event(now - 400 * DAY, "role", pid, None, f"none -> {label} (config)")

    for a in data.attempts:
        tid, person, ref = a.id, a.person, f"trainee:{a.id}"
        nick = nick_of[person]
        trainee_key = f"~{nick}@users.example.net"
        yield event(
            a.registered, "registered", person, person, a.chat and f"chat account {a.chat}", tid
        )
        vouchers = _vouchers(data, a, rng)
        span = (a.last_activity - a.registered).total_seconds()
        times = sorted(a.registered + dt.timedelta(seconds=rng.uniform(0, span)) for _ in vouchers)
        if times:
            times[-1] = a.last_activity
        counted = 0
        for (voucher, retracted), at in zip(vouchers, times, strict=True):
            note = rng.choice(NOTES)
            undone = at + rng.uniform(0.1, 48) * HOUR if retracted else None
            if undone is not None and undone > now:
                undone = now - 0.1 * HOUR
            yield "vouches", (tid, voucher, note, at, undone)
            yield event(at, "vouched", person, voucher, note, tid)
            if undone is not None:
                yield event(undone, "unvouched", person, voucher, None, tid)
            counted += not retracted
        if a.ready_at is not None:
            names = ", ".join(nick_of[v] for v, _ in vouchers[:counted])
            yield event(a.ready_at, "ready", person, vouchers[-1][0], f"{counted}/2", tid)
            text_ = (
                f"{nick} is ready for promotion ({counted} vouches: {names}). Say !promote {nick}"
            )
            for n, c in enumerate(coords):
                if a.state == READY:
                    fate = "pending" if n < 2 else "delivered"  # two coordinators are away
                else:
                    fate = "delivered" if n < len(coords) - 1 else "cancelled"
                yield message(key[c], text_, "ping", ref, a.ready_at, fate)
            yield event(a.ready_at + 0.2 * HOUR, "ping_delivered", person, None, None, tid)
            yield message(
                trainee_key,
                "You are ready: a coordinator will add you to the team soon.",
                "trainee",
                ref,
                a.ready_at,
                "delivered",
            )
            for n in range(a.sla_reminders):
                at = a.ready_at + (24 + 12 * n) * HOUR
                yield event(at, "sla_reminder", person, None, f"reminder {n + 1}", tid)
        if a.idle_reminded is not None:
            yield event(a.idle_reminded, "idle_reminder", person, None, "14 days idle", tid)
        if a.state == PROMOTED:
            assert a.closed_at is not None and a.by is not None
            yield event(a.closed_at, "promoted", person, a.by, None, tid)
            yield message(
                trainee_key,
                f"You are now a helper (promoted by {nick_of[a.by]}): welcome!",
                "trainee",
                ref,
                a.closed_at,
                "delivered",
            )
            left = data.left_team.get(person)
            if left is not None:
                yield event(left, "role", person, rng.choice(coords), "helper -> none")
        elif a.state == ON_HOLD:
            yield event(a.state_since, "held", person, a.by, a.reason, tid)
        elif a.closed_at is not None:
            yield event(a.closed_at, a.state, person, a.by, a.reason, tid)
            if a.state == REJECTED:
                assert a.by is not None
                body = f"Your training was closed by {nick_of[a.by]}: {a.reason}"
                yield message(trainee_key, body, "trainee", ref, a.closed_at, "delivered")


# -- writing the rows -----------------------------------------------------------------------------
Writer = Callable[[str, list[tuple]], None]


def load(data: Dataset, write: Writer, batch: int = 50_000) -> dict[str, int]:
    """Write people and attempts, then stream the rest in batches; return rows per table."""
    counts: dict[str, int] = {}

    def flush(table: str, buffer: list[tuple]) -> None:
        if buffer:
            write(table, buffer)
            counts[table] = counts.get(table, 0) + len(buffer)

    flush("people", data.people)
    attempts = list(attempt_rows(data))
    for i in range(0, len(attempts), batch):
        flush("attempts", attempts[i : i + batch])
    buffers: dict[str, list[tuple]] = {"vouches": [], "audit_events": [], "outbox": []}
    for table, row in rows(data):
        buffer = buffers[table]
        buffer.append(row)
        if len(buffer) >= batch:
            flush(table, buffer)
            buffers[table] = []
    for table, buffer in buffers.items():
        flush(table, buffer)
    return counts


def sqlite_writer(engine: Engine) -> Writer:
    """SQLAlchemy Core executemany, one transaction per batch (the WAL stays small)."""
    tables = {t.name: t for t in (PEOPLE, ATTEMPTS, VOUCHES, EVENTS, OUTBOX)}

    def write(table: str, batch: list[tuple]) -> None:
        cols = COLUMNS[table]
        with engine.begin() as conn:
            conn.execute(tables[table].insert(), [dict(zip(cols, r, strict=True)) for r in batch])

    return write


def populate_sqlite(path: Path, plan: Plan, now: dt.datetime) -> dict[str, int]:
    """A SQLite file at ``path`` with the migrations' schema and ``plan``'s rows."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine, [livechat.migrations])
        counts = load(build(plan, now), sqlite_writer(engine))
    finally:
        engine.dispose()
    with closing(sqlite3.connect(path)) as conn:  # the file alone is the database: copyable
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


def cached_sqlite(cache: Path, plan: Plan, fresh: bool) -> tuple[Path, dict[str, int], float]:
    """The large SQLite file, generated or reused; returns (path, rows per table, seconds)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"livechat-{plan.key}.db"
    age_h = (time.time() - path.stat().st_mtime) / 3600 if path.exists() else None
    if age_h is not None and age_h < CACHE_HOURS and not fresh:
        return path, count_rows(f"sqlite:///{path}"), 0.0
    for old in cache.glob("livechat-*"):  # other parameters' files, or too old: not kept
        old.unlink(missing_ok=True)
    partial = path.with_suffix(".partial")
    t0 = time.monotonic()
    counts = populate_sqlite(partial, plan, dt.datetime.now(dt.UTC))
    os.replace(partial, path)
    return path, counts, time.monotonic() - t0


def count_rows(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.scalar(select(func.count()).select_from(t)) or 0
                for t in (PEOPLE, ATTEMPTS, VOUCHES, EVENTS, OUTBOX)
            }
    finally:
        engine.dispose()


def postgres_version() -> str | None:
    """The server's version, or None if it does not answer (then its half is skipped)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception:
        return None
    return str(row[0]) if row else None


@contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database, dropped at the end: (SQLAlchemy URL, libpq DSN)."""
    import psycopg

    name = f"livechat_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            f"postgresql://postgres@127.0.0.1:5432/{name}",
            f"host=127.0.0.1 port=5432 user=postgres dbname={name}",
        )
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate_postgres(url: str, dsn: str, plan: Plan) -> dict[str, int]:
    """Migrate, COPY ``plan``'s rows in, move the id sequences past them, analyze."""
    import psycopg

    engine = make_engine(url)
    try:
        migrate(engine, [livechat.migrations])
    finally:
        engine.dispose()
    with psycopg.connect(dsn) as conn:

        def write(table: str, batch: list[tuple]) -> None:
            cols = ", ".join(COLUMNS[table])
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            conn.commit()

        counts = load(build(plan, dt.datetime.now(dt.UTC)), write)
        for table in ("people", "attempts"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
        conn.execute("CHECKPOINT")  # the load's dirty buffers written before measuring
    return counts


# -- talking to the bot ---------------------------------------------------------------------------
class NoAnswer(RuntimeError):
    """The bot (or the floor) did not answer in time: the run stops, with the bot's log."""


def round_trip(
    client: RawClient, target: str, command: str, want: str, timeout: float = 10
) -> float:
    """Send one command in a private message; seconds until ``target``'s reply containing
    ``want`` arrives (other lines, such as outbox deliveries, are skipped)."""
    t0 = time.perf_counter()
    client.send(f"PRIVMSG {target} :{command}")
    expect(client, target, want, timeout, after=command)
    return time.perf_counter() - t0


def expect(client: RawClient, source: str, want: str, timeout: float = 10, after: str = "") -> None:
    """Wait for a private message from ``source`` to ``client`` containing ``want``."""
    prefix = f":{source}!".encode()
    to_me = f" PRIVMSG {client.nick} :".encode()
    needle = want.encode()
    try:
        for line in client.lines(timeout):
            if line.startswith(prefix) and to_me in line and needle in line:
                return
    except TimeoutError:
        raise NoAnswer(f"{client.nick}: no {want!r} from {source} after {after!r}") from None


@dataclass
class Cast:
    """The people at the keyboards: who they are on IRC and what they say."""

    bystander: RawClient  # asks !ping and !status, watches the channel
    coordinator: RawClient
    helper: RawClient  # vouches and unvouches in the timed loops
    helper2: RawClient  # holds one standing vouch on each trainee of pool B
    pool_a: list[RawClient]  # vouched below the threshold
    pool_b: list[RawClient]  # vouched to the threshold

    @property
    def everyone(self) -> list[RawClient]:
        return [self.bystander, self.coordinator, self.helper, self.helper2]

    @property
    def trainees(self) -> list[RawClient]:
        return self.pool_a + self.pool_b

    def drain(self) -> None:
        for client in self.everyone + self.trainees:
            client.drain()

    def close(self) -> None:
        for client in self.everyone + self.trainees:
            with suppress(OSError):
                client.close()


def connect_cast(server: NgircdServer, stack: ExitStack) -> Cast:
    def join(nick: str) -> RawClient:
        client = RawClient(server.host, server.port, nick, quickack=True)
        client.send(f"JOIN {CHANNEL}")
        client.wait_for(b" 366 ")
        return client

    cast = Cast(
        join("bystander"),
        join("benchcoord"),
        join("benchhelper1"),
        join("benchhelper2"),
        [join(f"benchta{i:02d}") for i in range(1, POOL + 1)],
        [join(f"benchtb{i:02d}") for i in range(1, POOL + 1)],
    )
    stack.callback(cast.close)
    return cast


def bot_config(server: NgircdServer, url: str) -> dict[str, Any]:
    """The bot's config: hostmask identity, the bench's team as masks, limits opened."""
    return {
        "irc": {"host": server.host, "port": server.port, "nick": BOT, **OPEN_LIMITS},
        "bot": {
            "identity": "hostmask",
            "log_level": "WARNING",
            "plugins": ["livechat"],
            **OPEN_USER,
        },
        "database": {"url": url},
        "livechat": {
            "channel": CHANNEL,
            "threshold": 2,
            "page_size": PAGE_SIZE,
            "coordinators": ["benchcoord!*@127.0.0.1"],
            # One entry per helper: whoever matches an entry *is* that one person, so a
            # wildcard nick would make the two bench helpers one voucher.
            "helpers": ["benchhelper1!*@127.0.0.1", "benchhelper2!*@127.0.0.1"],
        },
    }


@dataclass
class Row:
    """One line of a result table."""

    label: str
    samples: list[float]
    target: bool  # held to the 20 ms target on the large database


@dataclass
class Phase:
    """One bot run on one database: its round trips, start time and memory."""

    title: str
    rows: list[Row]
    start_ms: float
    rss_setup: float
    rss_after: float


def timed(rounds: int, warmup: int, cast: Cast, step: Callable[[int], float]) -> list[float]:
    """``warmup + rounds`` sequential steps; the warm-up ones are dropped."""
    samples = []
    for i in range(warmup + rounds):
        took = step(i)
        if i >= warmup:
            samples.append(took)
        if i % 25 == 24:
            cast.drain()  # outside the timed step
    cast.drain()
    return samples


def run_phase(
    server: NgircdServer,
    cast: Cast,
    url: str,
    title: str,
    offline: Sequence[str],
    rounds: int,
    warmup: int,
) -> Phase:
    """Start the bot on ``url``, set the trainees up, time the sequence, stop the bot."""
    bot = BotUnderTest(bot_config(server, url))
    try:
        # Files just written (a copied database) are flushed now, not by the kernel's
        # writeback while we measure: commits that wait on the disk would pay for it.
        os.sync()
        cast.drain()
        started = bot.start()
        try:
            for line in cast.bystander.lines(120):
                if line.startswith(f":{BOT}!".encode()) and b" JOIN " in line:
                    break
        except TimeoutError:
            raise NoAnswer("the bot did not join within 120 s") from None
        start_ms = (time.monotonic() - started) * 1000
        return sequence(bot, cast, title, offline, rounds, warmup, start_ms)
    except NoAnswer as err:
        code = bot.proc.poll() if bot.proc else None
        raise NoAnswer(f"{err} (bot exit status {code}); bot log:\n{bot.log_tail()}") from None
    finally:
        bot.cleanup()


def sequence(
    bot: BotUnderTest,
    cast: Cast,
    title: str,
    offline: Sequence[str],
    rounds: int,
    warmup: int,
    start_ms: float,
) -> Phase:
    """The same commands in the same order on every database (so memory compares)."""
    assert bot.proc is not None
    b, coord, h1, h2 = cast.bystander, cast.coordinator, cast.helper, cast.helper2
    round_trip(b, BOT, "!ping", "pong", timeout=30)
    for t in cast.trainees:
        round_trip(t, BOT, "!newhelper", "You are now a trainee")
    round_trip(h1, BOT, "!status", "you are a helper")  # the config mask grants the role
    round_trip(coord, BOT, "!status", "you are a coordinator")
    for t in cast.pool_b:
        round_trip(h2, BOT, f"!vouch {t.nick}", f"vouched for {t.nick}: 1/2, training")
    cast.drain()
    rss_setup = rss_mb(bot.proc.pid)

    def settle() -> None:
        """The bot idle again: a command's deliveries done, before the next one is timed."""
        round_trip(b, BOT, "!ping", "pong")

    def vouch_pair(pool: list[RawClient], before: int) -> tuple[list[float], ...]:
        """Vouch then unvouch, each timed; with ``before`` 1 the vouch makes them ready."""
        ready = before == 1
        unvouches: list[float] = []
        pinged: list[float] = []
        state, back = ("ready", "; back to training") if ready else ("training", "")

        def step(i: int) -> float:
            trainee = pool[i % len(pool)]
            nick = trainee.nick
            t0 = time.perf_counter()
            took = round_trip(
                h1, BOT, f"!vouch {nick}", f"vouched for {nick}: {before + 1}/2, {state}"
            )
            if ready:  # the ping reaches the coordinator online (after a WHOIS: no away-notify)
                expect(coord, BOT, f"{nick} (~", after="!vouch")  # "nick (identity) is ready"
                pinged.append(time.perf_counter() - t0)
            # The trainee's outbox notes, in the order they are sent: then the bot is idle.
            expect(trainee, BOT, "You are ready" if ready else "vouched for you", after="!vouch")
            settle()
            undo = round_trip(
                h1, BOT, f"!unvouch {nick}", f"withdrew your vouch for {nick}: {before}/2{back}"
            )
            unvouches.append(undo)
            settle()
            return took

        vouches = timed(rounds, warmup, cast, step)
        return vouches, unvouches[warmup:], pinged[warmup:]

    floor = timed(rounds, warmup, cast, lambda i: round_trip(b, FLOOR, "!ping", "pong"))
    ping = timed(rounds, warmup, cast, lambda i: round_trip(b, BOT, "!ping", "pong"))
    vouch_a, unvouch_a, _ = vouch_pair(cast.pool_a, 0)
    vouch_b, unvouch_b, pinged = vouch_pair(cast.pool_b, 1)
    ready = timed(
        rounds,
        warmup,
        cast,
        lambda i: round_trip(coord, BOT, "!ready", "ircbot trainee list --state ready"),
    )
    trainees = cast.trainees

    def status_online(i: int) -> float:
        nick = trainees[i % len(trainees)].nick
        return round_trip(b, BOT, f"!status {nick}", f"{nick} is in training")

    def status_offline(i: int) -> float:
        nick = offline[i % len(offline)]
        return round_trip(b, BOT, f"!status {nick}", f"{nick} (offline) is")

    online = timed(rounds, warmup, cast, status_online)
    away = timed(rounds, warmup, cast, status_offline)
    rss_after = rss_mb(bot.proc.pid)
    rows = [
        Row("floor !ping (bare socket)", floor, False),
        Row("!ping", ping, False),
        Row("!vouch (1/2, training)", vouch_a, True),
        Row("!unvouch (0/2)", unvouch_a, False),
        Row("!vouch (2/2 -> ready, pings)", vouch_b, True),
        Row("!unvouch (ready -> training)", unvouch_b, False),
        Row("  !vouch sent -> ping delivered", pinged, False),
        Row(f"!ready ({PAGE_SIZE} lines + 'N more')", ready, True),
        Row("!status <trainee online>", online, True),
        Row("!status <nick offline> (WHOIS)", away, True),
    ]
    return Phase(title, rows, start_ms, rss_setup, rss_after)


# -- report ---------------------------------------------------------------------------------------
def print_phase(phase: Phase, *, targets: bool) -> list[str]:
    """The table of one run; returns the FAIL lines (only when held to the targets)."""
    print(f"\n## {phase.title}")
    print(
        f"bot start (process start to JOIN): {phase.start_ms:.0f} ms; resident memory "
        f"{phase.rss_setup:.1f} MB after setup, {phase.rss_after:.1f} MB after the sequence"
    )
    head = f"{'command':34}{'n':>5}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'p50-floor':>11}"
    head += f"{'p50/floor':>11}"
    print(head + ("   target <20 ms (p50, p99)" if targets else ""))
    floor = percentiles(phase.rows[0].samples)["p50"]
    failures = []
    for row in phase.rows:
        p = percentiles(row.samples)
        line = (
            f"{row.label:34}{len(row.samples):5d}{p['p50']:9.3f}{p['p90']:9.3f}{p['p99']:9.3f}"
            f"{p['p50'] - floor:11.3f}{p['p50'] / floor:11.1f}"
        )
        if targets and row.target:
            ok = p["p50"] < TARGET_MS and p["p99"] < TARGET_MS
            line += f"   {'PASS' if ok else 'FAIL'}"
            if not ok:
                failures.append(f"{phase.title}: {row.label}")
        print(line)
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--trainees", type=int, default=100_000)
    parser.add_argument("--vouches", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=300, help="timed round trips per command")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "livechat-bench",
        help="where the generated SQLite file is kept between runs",
    )
    parser.add_argument("--fresh", action="store_true", help="generate the SQLite file again")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    big = large_plan(args.trainees, args.vouches)

    began = time.monotonic()
    print(f"# workflow.py: livechat commands on a small and a large database, {cpu_note()}")
    print(
        f"# {args.rounds} sequential round trips per command after {args.warmup} warm-up, "
        "private messages, one command in flight"
    )
    print("# output queue and per-user limit opened via flood_*/user_* config keys for this run")
    print(
        "# clients ACK at once (TCP_QUICKACK): ngircd does not set TCP_NODELAY, so a reply of "
        "many lines would otherwise stall ~40 ms on our delayed ACK; os.sync() before each "
        "bot start"
    )
    print(f"# small database: {SMALL.describe()}")
    print(f"# large database: {big.describe()}")
    print(
        f"# !vouch: vouch then !unvouch alternately over {POOL} trainees each (every vouch "
        "a state change); '1/2' stays below the threshold, no pings; '2/2 -> ready' reaches "
        "it: pings to every coordinator's outbox"
    )
    failures: list[str] = []
    memory: list[tuple[str, float, float]] = []
    with ExitStack() as stack:
        server = stack.enter_context(NgircdServer())
        cast = connect_cast(server, stack)
        echo = Path(__file__).with_name("echo_floor.py")
        stack.enter_context(
            _process([sys.executable, str(echo), server.host, str(server.port), FLOOR])
        )
        cast.bystander.wait_for(f":{FLOOR}!".encode(), timeout=30)  # its JOIN
        work = Path(tempfile.mkdtemp(prefix="bench-workflow-"))
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        for backend in backends:
            version = sqlite3.sqlite_version if backend == "sqlite" else postgres_version()
            if version is None:
                print(f"\n# {backend}: nothing answers at 127.0.0.1:5432, skipped")
                failures.append(f"{backend}: not measured")
                continue
            print(f"\n# {backend} {version}")
            phases = []
            for plan in (SMALL, big):
                with ExitStack() as db:
                    t0 = time.monotonic()
                    if backend == "sqlite":
                        if plan is SMALL:
                            path = work / "small.db"
                            counts = populate_sqlite(path, plan, dt.datetime.now(dt.UTC))
                            made = time.monotonic() - t0
                            note = "generated"
                        else:
                            source, counts, made = cached_sqlite(args.cache, plan, args.fresh)
                            note = f"{source.stat().st_size / 2**20:.0f} MB file, " + (
                                "generated" if made else f"reused from {args.cache}"
                            )
                            path = work / "large.db"
                            shutil.copyfile(source, path)  # the run writes to its copy
                            db.callback(path.unlink, missing_ok=True)
                        url = f"sqlite:///{path}"
                    else:
                        url, dsn = db.enter_context(postgres_database())
                        counts = populate_postgres(url, dsn, plan)
                        made = time.monotonic() - t0
                        note = "COPY, then VACUUM ANALYZE and CHECKPOINT"
                    data_nicks = offline_nicks(url, plan)
                    size = "small" if plan is SMALL else "large"
                    print(
                        f"\n# {backend} {size} database: "
                        + ", ".join(f"{counts.get(t, 0):,} {t}" for t in COLUMNS)
                        + f" ({note}{f' in {made:.1f} s' if made else ''})"
                    )
                    phase = run_phase(
                        server,
                        cast,
                        url,
                        f"{backend}, {size} database",
                        data_nicks,
                        args.rounds,
                        args.warmup,
                    )
                    phases.append(phase)
            failures += print_phase(phases[0], targets=False)
            failures += print_phase(phases[1], targets=True)
            memory.append((backend, phases[0].rss_after, phases[1].rss_after))

    print("\n## resident memory after the same sequence (target: large within 10 MB of small)")
    for backend, small, large in memory:
        diff = large - small
        verdict = "PASS" if diff <= MEMORY_TARGET_MB else "FAIL"
        print(
            f"{backend:12} small {small:6.1f} MB   large {large:6.1f} MB   "
            f"difference {diff:+5.1f} MB   {verdict}"
        )
        if verdict == "FAIL":
            failures.append(f"{backend}: memory {diff:+.1f} MB")
    print(f"\ntargets: {'all PASS' if not failures else 'FAIL: ' + '; '.join(failures)}")
    print(f"total run time: {time.monotonic() - began:.0f} s")


def offline_nicks(url: str, plan: Plan, n: int = 200) -> list[str]:
    """Nicks of generated trainees (nobody online holds them), spread over the whole set."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stmt = select(func.count()).where(PEOPLE.c.identity.like("~tr%"))
            people = conn.scalar(stmt) or 0  # their nicks are tr000001, tr000002...
    finally:
        engine.dispose()
    rng = random.Random(plan.seed + 2)
    picks = sorted(rng.sample(range(1, people + 1), min(n, people)))
    return [f"tr{i:06d}" for i in picks]


@contextmanager
def _process(argv: list[str]) -> Iterator[None]:
    """A helper process (the floor) stopped however the run ends."""
    proc = subprocess.Popen(argv)
    try:
        yield None
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


if __name__ == "__main__":
    main()

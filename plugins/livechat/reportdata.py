"""The numbers behind the HTML report, counted by the database, never in Python.

The report reads every attempt of the history, which on a large team is 100,000 attempts and
a few million audit events: loading them would cost seconds and memory that grows with the
history. So each figure is one aggregate query (``GROUP BY`` and ``CASE`` buckets), and the
per-attempt pages read their rows in chunks from a streamed list of ids. What the IRC
commands already show comes from their own queries: :func:`.views.ready_list` for who is
ready, :func:`.views.attempt_views` for the vouches of an attempt.

Privacy is decided here too, once: :func:`shown_name` never returns a host mask and
:func:`scrub` hides anything shaped like ``user@host`` or an e-mail address in free text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from .config import LivechatConfig
from .models import CLOSED, OPEN, PROMOTED, Attempt, Event, Person, Vouch
from .views import AttemptView, attempt_views

__all__ = [
    "DELAY_BINS",
    "READY_BINS",
    "AttemptPage",
    "Funnel",
    "Histogram",
    "TimelineLine",
    "attempt_pages",
    "funnel",
    "histogram",
    "history",
    "page_filter",
    "promotions_per_coordinator",
    "scrub",
    "shown_name",
    "vouches_per_helper",
]

DAY = 24.0  # hours
# Bucket upper edges in hours. The 24 h promise is an edge of both, so the chart can draw it.
READY_BINS: tuple[tuple[float, str], ...] = (
    (12, "<12h"),
    (24, "12-24h"),
    (2 * DAY, "1-2d"),
    (3 * DAY, "2-3d"),
    (5 * DAY, "3-5d"),
    (7 * DAY, "5-7d"),
    (14 * DAY, "1-2w"),
    (21 * DAY, "2-3w"),
    (28 * DAY, "3-4w"),
    (42 * DAY, "4-6w"),
)
DELAY_BINS: tuple[tuple[float, str], ...] = (
    *((float(h), f"{h - 6}-{h}h") for h in range(6, 49, 6)),
    (72.0, "2-3d"),
    (7 * DAY, "3-7d"),
)

# Kinds whose detail the bot words itself (a count, a recipient): shown even in --public.
PUBLIC_DETAILS = frozenset(
    {"ready", "unready", "sla_reminder", "idle_reminder", "ping_delivered", "reminder_delivered"}
)
_ADDRESS = re.compile(r"[^\s@<>\"']*@[^\s@<>\"']+")


def scrub(text: str | None) -> str | None:
    """Free text with anything like ``user@host``, ``nick!user@host`` or an e-mail hidden."""
    return None if text is None else _ADDRESS.sub("[address hidden]", text)


def shown_name(nick: str | None, identity: str | None, *, hostmask: bool) -> str:
    """How the report names a person: the nick, else the account; never a host mask.

    In hostmask mode the identity key *is* ``user@host``, so only the nick may be shown.
    """
    if nick:
        return nick
    if identity and not hostmask and "@" not in identity:
        return identity
    return "(no nick)"


def account_of(identity: str, *, hostmask: bool) -> str | None:
    """The services account to show beside the nick (None in hostmask mode)."""
    return None if hostmask or "@" in identity else identity


def _hours(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    """``later - earlier`` in hours, in SQL (both stored as UTC timestamps)."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 24.0
    return func.extract("epoch", later - earlier) / 3600.0


def _first_ready():
    """Attempt id → when it first became ready (the audit log keeps every transition)."""
    # ``attempt_id + 0`` and no ``IS NOT NULL`` test: either would let SQLite walk the
    # attempt_id index and fetch every event out of order to read its kind (1.3 s on the
    # benchmark's 1.5 million events, against 0.3 s for one scan of the table). The CAST
    # gives the expression an integer affinity, so joins on it may still be indexed.
    attempt = cast(Event.attempt_id + 0, Integer).label("attempt_id")
    return (
        select(attempt, func.min(Event.at).label("at"))
        .where(Event.kind == "ready")
        .group_by(attempt)
        .subquery()
    )


# -- the funnel -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Funnel:
    """Attempts registered in a period, as they stand now, by how far they got."""

    registered: int = 0
    ready: int = 0  # reached ready at least once (or promoted)
    promoted: int = 0
    training: int = 0  # open and never ready: still training or on hold
    dropped_before_ready: int = 0  # rejected, withdrawn or idle-closed before ready
    waiting: int = 0  # reached ready, open: waiting for promotion, on hold, or back in training
    dropped_after_ready: int = 0

    def percent(self, part: int, whole: int) -> str:
        return f"{round(100 * part / whole)} %" if whole else "-"


def _count(rows: Iterator[tuple[str, int, int]]) -> Funnel:
    """A :class:`Funnel` from ``(state, reached ready, count)`` rows."""
    n: dict[str, int] = dict.fromkeys(Funnel.__dataclass_fields__, 0)
    for state, was_ready, count in rows:
        n["registered"] += count
        if state == PROMOTED:
            n["ready"] += count
            n["promoted"] += count
        elif was_ready:
            n["ready"] += count
            n["waiting" if state in OPEN else "dropped_after_ready"] += count
        else:
            n["training" if state in OPEN else "dropped_before_ready"] += count
    return Funnel(**n)


def funnel(session: Session, since: dt.datetime | None) -> Funnel:
    """The funnel of the attempts registered since ``since`` (None: the whole history).

    A recent period looks its few attempts' ``ready`` events up by index; the whole history
    groups the ``ready`` events once instead (see :func:`history`, which does that too).
    """
    if since is None:
        found, _ = history(session, READY_BINS, 24.0)
        return found
    ready_event = (
        select(Event.id).where(Event.attempt_id == Attempt.id, Event.kind == "ready").exists()
    )
    reached = case((or_(ready_event, Attempt.state == PROMOTED), 1), else_=0).label("reached")
    stmt = (
        select(Attempt.state, reached, func.count())
        .where(Attempt.registered_at >= since)
        .group_by(Attempt.state, "reached")
    )
    return _count(session.execute(stmt))


# -- the two waits --------------------------------------------------------------------------
@dataclass(frozen=True)
class Histogram:
    """Counts per bucket (the last one open-ended), with the median and the share in 24 h."""

    labels: list[str]
    counts: list[int]
    promise_index: int  # buckets before this index end by the promise
    median_hours: float | None

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def within_promise(self) -> int:
        return sum(self.counts[: self.promise_index])


def _bucket(hours: Any, bins: Sequence[tuple[float, str]]) -> Any:
    return case(*[(hours < edge, i) for i, (edge, _) in enumerate(bins)], else_=len(bins))


def _histogram(
    session: Session,
    values: Any,
    counts: list[int],
    bins: Sequence[tuple[float, str]],
    promise_hours: float,
) -> Histogram:
    """Finish a histogram: the exact median (one sorted read of ``values.c.hours``)."""
    total = sum(counts)
    median = None
    if total:
        median = session.scalar(
            select(values.c.hours).order_by(values.c.hours).offset((total - 1) // 2).limit(1)
        )
    promise = next((i + 1 for i, (edge, _) in enumerate(bins) if edge >= promise_hours), len(bins))
    labels = [label for _, label in bins] + [f">{bins[-1][1].split('-')[-1]}"]
    return Histogram(labels, counts, promise, None if median is None else float(median))


def _to_ready(dialect: str) -> tuple[Any, Any]:
    first = _first_ready()
    return first, _hours(first.c.at, Attempt.registered_at, dialect)


def history(
    session: Session, bins: Sequence[tuple[float, str]], promise_hours: float
) -> tuple[Funnel, Histogram]:
    """The whole history's funnel and its time-to-ready histogram, from one grouped read of
    the ``ready`` events (the costliest read of the report: it is done once)."""
    first, hours = _to_ready(session.get_bind().dialect.name)
    reached = case((or_(first.c.at.is_not(None), Attempt.state == PROMOTED), 1), else_=0)
    bucket = case((first.c.at.is_(None), -1), else_=_bucket(hours, bins))
    stmt = (
        select(Attempt.state, reached.label("reached"), bucket.label("bucket"), func.count())
        .select_from(Attempt)
        .outerjoin(first, first.c.attempt_id == Attempt.id)
        .group_by(Attempt.state, "reached", "bucket")
    )
    rows = session.execute(stmt).all()
    counts = [0] * (len(bins) + 1)
    for _state, _reached, index, count in rows:
        if index is not None and int(index) >= 0:
            counts[int(index)] += count
    values = select(hours.label("hours")).join(first, first.c.attempt_id == Attempt.id).subquery()
    found = _count((state, was, count) for state, was, _, count in rows)
    return found, _histogram(session, values, counts, bins, promise_hours)


def histogram(
    session: Session, which: str, bins: Sequence[tuple[float, str]], promise_hours: float
) -> Histogram:
    """``which`` is ``"to_ready"`` (registration → first ready) or ``"to_promoted"``
    (ready → promoted): bucketed and its median taken in SQL."""
    dialect = session.get_bind().dialect.name
    if which == "to_ready":
        first, hours = _to_ready(dialect)
        base = select(hours.label("hours")).join(first, first.c.attempt_id == Attempt.id)
    else:
        hours = _hours(Attempt.promoted_at, Attempt.ready_at, dialect)
        base = select(hours.label("hours")).where(
            Attempt.state == PROMOTED,
            Attempt.ready_at.is_not(None),
            Attempt.promoted_at.is_not(None),
        )
    values = base.subquery()
    counts = [0] * (len(bins) + 1)
    bucket = _bucket(values.c.hours, bins).label("bucket")
    for index, count in session.execute(select(bucket, func.count()).group_by("bucket")):
        counts[int(index)] = count
    return _histogram(session, values, counts, bins, promise_hours)


# -- the load on the team -------------------------------------------------------------------
@dataclass(frozen=True)
class Tally:
    """One person's count in a ranking (the rest summed into ``others``)."""

    name: str
    count: int
    recent: int = 0


def vouches_per_helper(
    session: Session, since: dt.datetime, *, hostmask: bool, top: int = 20
) -> tuple[list[Tally], int, int]:
    """Vouches given since ``since`` (not withdrawn), most first: the top, how many helpers
    vouched, how many vouches in all."""
    # ``voucher_id + 0``: grouped by the bare column, SQLite walks the voucher index and
    # fetches each of a million rows out of order to test its date (11 s on the benchmark's
    # database); by an expression it scans the table once and groups in a temporary B-tree
    # (0.3 s). PostgreSQL plans both the same.
    pid = (Vouch.voucher_id + 0).label("pid")
    per = (
        select(pid, func.count().label("n"))
        .where(Vouch.created_at >= since, Vouch.retracted_at.is_(None))
        .group_by(pid)
        .subquery()
    )
    helpers, total = session.execute(select(func.count(), func.sum(per.c.n))).one()
    stmt = (
        select(Person.last_nick, Person.identity, per.c.n)
        .join(per, per.c.pid == Person.id)
        .order_by(per.c.n.desc(), Person.id)
        .limit(top)
    )
    rows = [
        Tally(shown_name(nick, ident, hostmask=hostmask), n)
        for nick, ident, n in session.execute(stmt)
    ]
    return rows, helpers or 0, int(total or 0)


def promotions_per_coordinator(
    session: Session, since: dt.datetime, *, hostmask: bool
) -> list[Tally]:
    """Promotions by each coordinator, all time and since ``since``, most first."""
    recent = func.sum(case((Attempt.promoted_at >= since, 1), else_=0))
    per = (
        select(Attempt.promoted_by_id.label("pid"), func.count().label("n"), recent.label("r"))
        .where(Attempt.state == PROMOTED)
        .group_by(Attempt.promoted_by_id)
        .subquery()
    )
    stmt = (
        select(Person.last_nick, Person.identity, per.c.n, per.c.r)
        .select_from(per)
        .outerjoin(Person, Person.id == per.c.pid)
        .order_by(per.c.n.desc(), per.c.pid)
    )
    return [
        Tally(shown_name(nick, ident, hostmask=hostmask) if ident else "(no one named)", n, r or 0)
        for nick, ident, n, r in session.execute(stmt)
    ]


# -- one page per attempt -------------------------------------------------------------------
def page_filter(since: dt.datetime) -> ColumnElement[bool]:
    """Which attempts get a page: every open one, and those closed since ``since``."""
    return or_(Attempt.state.in_(OPEN), and_(Attempt.state.in_(CLOSED), Attempt.closed_at >= since))


@dataclass(frozen=True)
class TimelineLine:
    at: dt.datetime
    kind: str
    actor: str
    detail: str | None
    attempt: bool  # False: an event about the person (a role change), not the attempt


@dataclass
class AttemptPage:
    """What one attempt's page shows: the view, the person, the timeline, the other attempts."""

    view: AttemptView
    name: str
    account: str | None
    timeline: list[TimelineLine] = field(default_factory=list)
    others: list[tuple[int, str, bool]] = field(default_factory=list)  # id, state, has a page

    def person_name(self, person: Person | None, hostmask: bool) -> str:
        if person is None:
            return "the bot"
        return shown_name(person.last_nick, person.identity, hostmask=hostmask)


def attempt_pages(
    session: Session,
    rules: LivechatConfig,
    now: dt.datetime,
    since: dt.datetime,
    *,
    hostmask: bool,
    public: bool,
    chunk: int = 500,
) -> Iterator[AttemptPage]:
    """Every attempt that gets a page, oldest first, read ``chunk`` attempts at a time.

    The ids come from one streamed query; each chunk loads its attempts, their standing
    vouches (:func:`.views.attempt_views`), their audit events and the person's other
    attempts, then leaves the session, so memory does not grow with the history.
    """
    ids_stmt = select(Attempt.id).where(page_filter(since)).order_by(Attempt.id)
    result = session.execute(ids_stmt, execution_options={"yield_per": chunk})
    for ids in result.partitions():
        yield from _chunk(session, rules, now, since, [i for (i,) in ids], hostmask, public)
        session.expunge_all()


def _chunk(
    session: Session,
    rules: LivechatConfig,
    now: dt.datetime,
    since: dt.datetime,
    ids: list[int],
    hostmask: bool,
    public: bool,
) -> Iterator[AttemptPage]:
    stmt = (
        select(Attempt)
        .where(Attempt.id.in_(ids))
        .order_by(Attempt.id)
        .options(
            selectinload(Attempt.promoted_by),
            selectinload(Attempt.held_by),
            selectinload(Attempt.closed_by),
        )
    )
    attempts = list(session.scalars(stmt))
    views = attempt_views(session, rules, now, attempts)
    people = {t.person_id for t in attempts}
    actor = aliased(Person)
    others: dict[int, list[tuple[int, str, dt.datetime | None, dt.datetime]]] = {}
    siblings = (
        select(Attempt.id, Attempt.person_id, Attempt.state, Attempt.closed_at)
        .add_columns(Attempt.registered_at)
        .where(Attempt.person_id.in_(people))
        .order_by(Attempt.id)
    )
    for tid, pid, state, closed_at, registered in session.execute(siblings):
        others.setdefault(pid, []).append((tid, state, closed_at, registered))
    events: dict[int | None, list[tuple]] = {}
    person_events: dict[int, list[tuple]] = {}
    stmt_events = (
        select(
            Event.attempt_id,
            Event.person_id,
            Event.at,
            Event.kind,
            Event.detail,
            actor.last_nick,
            actor.identity,
        )
        .outerjoin(actor, actor.id == Event.actor_id)
        .where(
            or_(
                Event.attempt_id.in_(ids),
                and_(Event.attempt_id.is_(None), Event.person_id.in_(people)),
            )
        )
        .order_by(Event.at, Event.id)
    )
    for tid, pid, at, kind, detail, nick, ident in session.execute(stmt_events):
        who = "the bot" if ident is None else shown_name(nick, ident, hostmask=hostmask)
        if detail is not None and public and kind not in PUBLIC_DETAILS:
            detail = None
        item = (at, kind, who, scrub(detail))
        if tid is None:
            person_events.setdefault(pid, []).append(item)
        else:
            events.setdefault(tid, []).append(item)
    for view in views:
        t = view.attempt
        mine = others.get(t.person_id, [])
        later = [reg for (tid, _, _, reg) in mine if tid > t.id]
        until = min(later) if later else None
        timeline = [TimelineLine(*e, attempt=True) for e in events.get(t.id, [])]
        timeline += [
            TimelineLine(*e, attempt=False)
            for e in person_events.get(t.person_id, [])
            if e[0] >= t.registered_at and (until is None or e[0] < until)
        ]
        timeline.sort(key=lambda line: line.at)
        page = AttemptPage(
            view,
            shown_name(t.person.last_nick, t.person.identity, hostmask=hostmask),
            account_of(t.person.identity, hostmask=hostmask),
            timeline,
            [
                (tid, state, state in OPEN or (closed is not None and closed >= since))
                for tid, state, closed, _ in mine
                if tid != t.id
            ],
        )
        yield page

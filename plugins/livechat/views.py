"""What people are shown: status lines, the ready list, the trainee list, a timeline.

Read-only, and no IRC: each function takes a session and returns text (one short line per
item) or the rows behind it, so the IRC commands and the CLI show the same thing. Every query
here is an index lookup (see the indexes in :mod:`.models`), so answers stay quick however
long the history grows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .config import LivechatConfig
from .models import OPEN, PROMOTED, READY, TRAINING, Attempt, Event, Person, Vouch
from .past import Past, clip, past_of
from .roles import Role
from .store import Subject, ago, latest_attempt, open_attempt, stamp, voucher_column

__all__ = [
    "AttemptView",
    "VouchLine",
    "attempt_views",
    "counts",
    "history",
    "identity_tag",
    "named",
    "ready_line",
    "ready_list",
    "status",
    "trainees_page",
]


def identity_tag(person: Person) -> str:
    """The person's identity as a stable argument: ``account:bob`` in account mode, the
    ``user@host`` key itself in hostmask mode (an account name never holds an ``@``)."""
    key = person.identity
    return key if "@" in key else f"account:{key}"


def named(person: Person) -> str:
    """``Bob (account:bob)``: the nick people know, and who that is whatever the nick."""
    tag = identity_tag(person)
    return f"{person.last_nick} ({tag})" if person.last_nick else tag


@dataclass(frozen=True)
class VouchLine:
    """A standing vouch as shown: who, whether they are still a helper, when, why."""

    name: str
    role: Role
    created_at: dt.datetime
    note: str | None

    @property
    def counts(self) -> bool:
        return self.role >= Role.HELPER


@dataclass
class AttemptView:
    """One attempt with the vouches on record (counted or not) and its SLA standing."""

    attempt: Attempt
    vouches: list[VouchLine]
    threshold: int
    overdue: bool
    past: Past | None = None  # an earlier hold or rejection (only when asked for: see past=)

    @property
    def counted(self) -> list[VouchLine]:
        return [v for v in self.vouches if v.counts]

    @property
    def nick(self) -> str:
        return self.attempt.person.name

    def vouchers(self, now: dt.datetime | None = None) -> str:
        """``bob, carol 2h ago`` with the no-longer-counting ones marked."""
        names = [v.name + (f" {ago(now, v.created_at)} ago" if now else "") for v in self.counted]
        stale = [v.name for v in self.vouches if not v.counts]
        if stale:
            names.append("not counted: " + ", ".join(stale))
        return ", ".join(names) or "none yet"

    def tally(self) -> str:
        return f"{len(self.counted)}/{self.threshold}"


def attempt_views(
    session: Session,
    rules: LivechatConfig,
    now: dt.datetime,
    attempts: Sequence[Attempt],
    *,
    past: bool = False,
) -> list[AttemptView]:
    """Views of several attempts with one query for all their standing vouches, and with
    ``past`` one more for their people's earlier holds and rejections (:mod:`.past`)."""
    ids = [t.id for t in attempts]
    by_attempt: dict[int, list[VouchLine]] = {i: [] for i in ids}
    if ids:
        stmt = (
            select(
                Vouch.attempt_id,
                voucher_column(func.coalesce(Person.last_nick, Person.identity)),
                voucher_column(Person.role),
                Vouch.created_at,
                Vouch.note,
            )
            .where(Vouch.attempt_id.in_(ids), Vouch.retracted_at.is_(None))
            .order_by(Vouch.created_at, Vouch.id)
        )
        for attempt_id, name, role, created_at, note in session.execute(stmt):
            by_attempt[attempt_id].append(VouchLine(name, role, created_at, note))
    due = now - dt.timedelta(hours=rules.sla_hours)
    earlier = past_of(session, {t.person_id for t in attempts}) if past else {}
    return [
        AttemptView(
            t,
            by_attempt[t.id],
            rules.threshold,
            overdue=t.state == READY and t.ready_at is not None and t.ready_at <= due,
            past=earlier.get(t.person_id),
        )
        for t in attempts
    ]


def status(
    session: Session,
    rules: LivechatConfig,
    now: dt.datetime,
    subject: Subject,
    *,
    me: bool,
    prefix: str,
) -> str:
    """``!status``: state, vouches of the threshold, from whom, since when; an earlier hold
    or rejection; ``prefix`` spells the commands it suggests."""
    person = subject.person
    who = "you are" if me else f"{subject.label} is"
    start = f"{who} not a trainee (say {prefix}newhelper to start)"
    if person is None:
        return start
    attempt = open_attempt(session, person.id) or latest_attempt(session, person.id)
    if person.role >= Role.HELPER:
        line = f"{who} a {person.role.label}"
        if attempt is not None and attempt.state == PROMOTED:
            by = attempt.promoted_by.name if attempt.promoted_by else "the bot"
            line += f", promoted by {by} on {stamp(attempt.promoted_at)}"
        return line
    if attempt is None:
        return start
    since = ago(now, attempt.state_since)
    if not attempt.is_open:
        held = ""
        if attempt.hold_reason is not None:  # it ended while on hold: that stays on record
            by = attempt.held_by.name if attempt.held_by else "?"
            held = f", while on hold by {by}: {clip(attempt.hold_reason)}"
        return (
            f"{who} not in training: {attempt.state} {since} ago "
            f"({clip(attempt.close_reason)}){held}; {prefix}newhelper starts afresh"
        )
    view = attempt_views(session, rules, now, [attempt], past=True)[0]
    earlier = f"; {view.past.text()}" if view.past else ""
    if attempt.state == TRAINING:
        line = f"{who} in training for {since}, {view.tally()} vouches: {view.vouchers(now)}"
    elif attempt.state == READY:
        late = ", OVERDUE" if view.overdue else ""
        line = (
            f"{who} ready for {since}{late}, {view.tally()} vouches: {view.vouchers()}; "
            "waiting for a coordinator"
        )
    else:
        by = attempt.held_by.name if attempt.held_by else "?"
        line = f"{who} on hold for {since} by {by}: {attempt.hold_reason}; {view.tally()} vouches"
    return line + earlier


def ready_line(view: AttemptView, now: dt.datetime, *, detail: bool = False) -> str:
    """One ready trainee: who (nick and identity), vouchers, chat account, time waiting,
    overdue mark, an earlier hold or rejection (if the view was made with ``past``)."""
    t = view.attempt
    account = t.chat_account or "no chat account"
    waiting = ago(now, t.ready_at)
    who = named(t.person)
    line = f"{who} {view.tally()} by {view.vouchers()}; {account}; waiting {waiting}"
    if view.overdue:
        line += " OVERDUE"
    if view.past:
        line += f"; {view.past.text()}"
    if detail:
        notes = "; ".join(f"{v.name}: {v.note}" for v in view.vouches if v.note)
        line += f"; registered {stamp(t.registered_at)}" + (f"; notes: {notes}" if notes else "")
    return line


def ready_list(
    session: Session, rules: LivechatConfig, now: dt.datetime, limit: int | None = None
) -> tuple[int, int, list[AttemptView]]:
    """``!ready``: how many are ready, how many overdue, and the longest waiting first."""
    due = now - dt.timedelta(hours=rules.sla_hours)
    ready = Attempt.state == READY
    late = func.sum(case((Attempt.ready_at <= due, 1), else_=0))
    total, overdue = session.execute(select(func.count(), late).where(ready)).one()
    stmt = select(Attempt).where(ready).order_by(Attempt.ready_at, Attempt.id).limit(limit)
    shown = list(session.scalars(stmt))
    return total, overdue or 0, attempt_views(session, rules, now, shown, past=True)


def counts(session: Session) -> dict[str, int]:
    """How many attempts are in each open state."""
    stmt = (
        select(Attempt.state, func.count()).where(Attempt.state.in_(OPEN)).group_by(Attempt.state)
    )
    found = {state: 0 for state in OPEN}
    found.update({state: n for state, n in session.execute(stmt)})
    return found


def trainees_page(
    session: Session, rules: LivechatConfig, now: dt.datetime, page: int
) -> tuple[dict[str, int], list[AttemptView], int]:
    """``!trainees``: counts, one page of ready-then-training trainees, the number of pages."""
    found = counts(session)
    total = found[READY] + found[TRAINING]
    pages = max(1, -(-total // rules.page_size))
    start = (min(max(page, 1), pages) - 1) * rules.page_size
    ids: list[int] = []
    if start < found[READY]:
        stmt = (
            select(Attempt.id).where(Attempt.state == READY).order_by(Attempt.ready_at, Attempt.id)
        )
        ids += session.scalars(stmt.offset(start).limit(rules.page_size))
    room = rules.page_size - len(ids)
    if room > 0:
        stmt = (
            select(Attempt.id)  # ids first: the offset walks the index, not the rows
            .where(Attempt.state == TRAINING)
            .order_by(Attempt.registered_at, Attempt.id)
            .offset(max(0, start - found[READY]))
            .limit(room)
        )
        ids += session.scalars(stmt)
    loaded = {t.id: t for t in session.scalars(select(Attempt).where(Attempt.id.in_(ids)))}
    chosen = [loaded[i] for i in ids]
    return found, attempt_views(session, rules, now, chosen), pages


def history(session: Session, person: Person) -> list[str]:
    """``!history``: the audit log of the person's attempts and roles, oldest first
    (registered, vouches, ready, pings delivered, holds, promotion), each with actor and time."""
    stmt = select(Event).where(Event.person_id == person.id).order_by(Event.at, Event.id)
    lines = []
    for e in session.scalars(stmt):
        actor = e.actor.name if e.actor else "bot"
        attempt = f"#{e.attempt_id} " if e.attempt_id else ""
        detail = f": {e.detail}" if e.detail else ""
        lines.append(f"{stamp(e.at)} {attempt}{e.kind} by {actor}{detail}")
    return lines

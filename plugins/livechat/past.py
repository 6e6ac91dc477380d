"""What a trainee's earlier attempts say about them: a hold they walked away from, a rejection.

A coordinator's ``!hold`` or ``!reject`` is a judgement the team must not lose. Without this
module a trainee on hold could ``!withdraw``, ``!newhelper`` again and gather fresh vouches,
and the coordinators would be pinged about a clean newcomer. So every text that asks a
coordinator to decide (the ready ping, the SLA reminder, ``!ready``, ``!status``) carries
the latest such record: "previously on hold: <reason> (by carol, 2026-11-03; withdrew
2026-11-05)" or "previously rejected: <reason> (by carol, 2026-11-03)".

Which earlier attempts count: a rejected one, and one that ended (withdrawn, or closed as
idle) while on hold. :func:`~.workflow.close` keeps ``hold_reason`` and ``held_by_id`` on
the row it closes, and only ``!unhold`` clears them, so "ended while on hold" is "closed
with a hold reason". A hold a coordinator lifted, or a plain withdrawal, is no warning.

Cost: one query for any number of attempts, an index walk of ``(person_id, id)`` per
person (a person has a handful of attempts) and two primary-key or ``(attempt_id, id)``
lookups per record found, so ``!status``, ``!ready`` and the ping stay index lookups on
100,000 attempts. At most one attempt per person is open and attempts are numbered in
order, so a person's closed attempts are all earlier than their open one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarSelect, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from ircbot.lines import text_budget

from .models import CLOSED_IDLE, REJECTED, WITHDRAWN, Attempt, Event, Person

__all__ = ["LINE_BYTES", "REASON_BYTES", "Past", "clip", "fit", "past_of"]

REASON_BYTES = 100  # of a reason quoted in a ping or a reminder, at most
# What one private message to the longest nick may hold, as the server relays it: a ping
# that fits is one line, its "Say !promote X" never pushed onto a second.
LINE_BYTES = text_budget("PRIVMSG", "n" * 30)


@dataclass(frozen=True)
class Past:
    """The latest earlier attempt that ended rejected, or while on hold."""

    attempt_id: int
    state: str
    reason: str
    by: str
    at: dt.datetime | None  # when held, or when rejected
    ended: dt.datetime | None  # when it closed

    def text(self, reason_bytes: int = REASON_BYTES) -> str:
        """One short clause, e.g. ``previously on hold: rude to a user (by carol, 2026-11-03)``."""
        when = f", {self.at:%Y-%m-%d}" if self.at else ""
        reason = clip(self.reason, reason_bytes)
        if self.state == REJECTED:
            return f"previously rejected: {reason} (by {self.by}{when})"
        how = "withdrew" if self.state == WITHDRAWN else "closed"
        ended = f"; {how} {self.ended:%Y-%m-%d}" if self.ended else ""
        return f"previously on hold: {reason} (by {self.by}{when}{ended})"


def clip(text: str | None, limit: int = REASON_BYTES) -> str:
    """``text`` on one line, cut to ``limit`` UTF-8 bytes (whole characters, an ellipsis
    marking the cut)."""
    text = " ".join((text or "?").split())
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: max(0, limit - 3)].decode(errors="ignore").rstrip() + "…"


def fit(build: Callable[[int], str], budget: int = LINE_BYTES) -> str:
    """``build(reason_bytes)`` with the longest quoted reason that keeps it within ``budget``
    bytes (down to a stub of the reason: names and the command to say always stay whole)."""
    text = build(REASON_BYTES)
    over = len(text.encode()) - budget
    return text if over <= 0 else build(max(12, REASON_BYTES - over))


def _name(person_id: Any) -> ScalarSelect[Any]:
    """The name of a person by id, as a scalar subquery (a primary-key lookup)."""
    return (
        select(func.coalesce(Person.last_nick, Person.identity))
        .where(Person.id == person_id)
        .scalar_subquery()
    )


def _statement() -> Select[Any]:
    """The one query, built once: the latest warning attempt of each person of ``:ids``,
    with the names of who held and who closed it and when it was put on hold.

    Per person, a correlated ``max(id)`` on ``(person_id, id)``: with a plain
    ``person_id IN (...) GROUP BY`` SQLite preferred, for a list of ids, to walk every
    rejected and withdrawn attempt by the state index (the whole history), not the few of
    the people asked about.
    """
    earlier = Attempt.__table__.alias("earlier")
    warning = or_(
        earlier.c.state == REJECTED,
        and_(earlier.c.state.in_((WITHDRAWN, CLOSED_IDLE)), earlier.c.hold_reason.is_not(None)),
    )
    latest_of_person = (
        select(func.max(earlier.c.id))
        .where(earlier.c.person_id == Person.id, warning)
        .scalar_subquery()
    )
    latest = select(latest_of_person).where(Person.id.in_(bindparam("ids", expanding=True)))
    held_at = (
        select(func.max(Event.at))
        .where(Event.attempt_id == Attempt.id, Event.kind == "held")
        .scalar_subquery()
    )
    return select(
        Attempt.id,
        Attempt.person_id,
        Attempt.state,
        Attempt.hold_reason,
        Attempt.close_reason,
        Attempt.closed_at,
        _name(Attempt.held_by_id),
        _name(Attempt.closed_by_id),
        held_at,
    ).where(Attempt.id.in_(latest))


_PAST = _statement()


def past_of(session: Session, person_ids: Iterable[int]) -> dict[int, Past]:
    """``{person id: Past}`` for those of ``person_ids`` who have such a record; one query."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    rows = session.execute(_PAST, {"ids": ids})
    found: dict[int, Past] = {}
    for row in rows:
        tid, pid, state, hold_reason, close_reason, closed_at, held_by, closed_by, held = row
        if state == REJECTED:
            found[pid] = Past(tid, state, close_reason, closed_by or "?", closed_at, closed_at)
        else:
            found[pid] = Past(tid, state, hold_reason, held_by or "?", held, closed_at)
    return found

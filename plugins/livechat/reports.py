"""Numbers and dumps for the people who run the process (the ``ircbot`` command line).

``report`` answers "is the promise kept?": how many registered, reached ready and were
promoted, the median time to ready and from ready to promotion, and who is overdue now.
``export`` dumps every table of the process as plain rows for a spreadsheet or an archive.
Read-only, no IRC; rows are plain dicts so JSON and CSV writers take them as they are.

Much of that text was typed on IRC by anyone (vouch notes, chat accounts, reasons). A CSV
cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR is a formula to a spreadsheet, which
can fetch URLs or run commands when the file is opened (OWASP, "CSV Injection"), so
:func:`spreadsheet_rows` puts a ``'`` before such text; JSON is left as typed.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from .config import LivechatConfig
from .models import OPEN, PROMOTED, READY, Attempt, Event, Person, Vouch
from .store import ago
from .views import attempt_views

__all__ = ["attempt_rows", "export_tables", "funnel", "spreadsheet_rows", "spreadsheet_safe"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "label") and isinstance(value, int):  # a Role
        return value.label
    return value


def attempt_rows(
    session: Session, rules: LivechatConfig, now: dt.datetime, state: str | None
) -> list[dict[str, Any]]:
    """``trainee list``: attempts in ``state`` (None: the open ones), oldest first."""
    states = OPEN if state is None else (state,)
    stmt = select(Attempt).where(Attempt.state.in_(states)).order_by(Attempt.id)
    rows = []
    for view in attempt_views(session, rules, now, list(session.scalars(stmt))):
        t = view.attempt
        rows.append(
            {
                "id": t.id,
                "nick": t.person.last_nick,
                "identity": t.person.identity,
                "state": t.state,
                "vouches": len(view.counted),
                "threshold": rules.threshold,
                "vouchers": [v.name for v in view.counted],
                "chat_account": t.chat_account,
                "registered_at": _iso(t.registered_at),
                "ready_at": _iso(t.ready_at),
                "waiting": ago(now, t.ready_at) if t.state == READY else None,
                "overdue": view.overdue,
                "promoted_at": _iso(t.promoted_at),
                "close_reason": t.close_reason or t.hold_reason,
            }
        )
    return rows


def _median_hours(deltas: list[dt.timedelta]) -> float | None:
    if not deltas:
        return None
    return round(statistics.median(d.total_seconds() for d in deltas) / 3600, 1)


def funnel(session: Session, rules: LivechatConfig, now: dt.datetime) -> dict[str, Any]:
    """registered → ready → promoted, the two medians, and who is overdue now."""
    first_ready = dict(
        session.execute(
            select(Event.attempt_id, func.min(Event.at))
            .where(Event.kind == "ready", Event.attempt_id.is_not(None))
            .group_by(Event.attempt_id)
        ).all()
    )
    attempts = list(session.execute(select(Attempt.id, Attempt.registered_at)).all())
    promoted = list(
        session.execute(
            select(Attempt.ready_at, Attempt.promoted_at).where(Attempt.state == PROMOTED)
        ).all()
    )
    to_ready = [first_ready[i] - registered for i, registered in attempts if i in first_ready]
    to_promoted = [p - r for r, p in promoted if r is not None and p is not None]
    due = now - dt.timedelta(hours=rules.sla_hours)
    overdue = session.scalars(
        select(Person.last_nick)
        .join(Attempt, Attempt.person_id == Person.id)
        .where(Attempt.state == READY, Attempt.ready_at <= due)
        .order_by(Attempt.ready_at)
    ).all()
    return {
        "registered": len(attempts),
        "ready": len(first_ready),
        "promoted": len(promoted),
        "median_hours_to_ready": _median_hours(to_ready),
        "median_hours_ready_to_promoted": _median_hours(to_promoted),
        "overdue_now": [nick or "?" for nick in overdue],
    }


def _table(session: Session, model: type) -> list[dict[str, Any]]:
    columns = [c.key for c in inspect(model).columns]
    stmt = select(model).order_by(model.id)
    return [{c: _iso(getattr(row, c)) for c in columns} for row in session.scalars(stmt)]


def export_tables(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every row of people, attempts, vouches and the audit log, by kind (the CSV file names)."""
    return {
        "people": _table(session, Person),
        "attempts": _table(session, Attempt),
        "vouches": _table(session, Vouch),
        "events": _table(session, Event),
    }


def spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula, made inert with a leading ``'``.

    >>> spreadsheet_safe("=1+2"), spreadsheet_safe("bob"), spreadsheet_safe(-1)
    ("'=1+2", 'bob', -1)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with every text cell passed through :func:`spreadsheet_safe` (CSV export)."""
    return [{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows]

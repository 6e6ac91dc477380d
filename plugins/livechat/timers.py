"""The rules that run on the clock: the 24-hour promise and idle trainees.

The original process broke because a ready trainee waited on one person's memory. Here a
ready trainee not promoted within ``first_reminder_hours`` makes the bot remind every
coordinator, again every ``reminder_hours`` until someone acts. The first reminder comes
before the ``sla_hours`` promise runs out, not at that moment: a simulated month
(``bench/month.py``) showed that reminding only once the promise was broken kept it for 51 of
63 trainees, and reminding at half of it for 60 of 63; a trainee with no vouch for ``idle_days`` is
reminded once, and closed ``idle_days`` later ("say !newhelper to come back", spelled with
``[bot] prefix`` as every text is). A reminder names the trainee's identity and any earlier
hold or rejection, as the ping does. All of it is
written like the pings: outbox rows in the same transaction as the bookkeeping and the audit
event, so a restart neither loses nor repeats a reminder. Each reminder replaces the earlier
undelivered one about the same trainee, so someone away for a week finds one, not fourteen.

:func:`run_timers` is idempotent for a given "now": run it as often as you like.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update

from .models import CLOSED_IDLE, READY, TRAINING, Attempt
from .past import Past, fit, past_of
from .store import REMINDER, TO_TRAINEE, Unit, ago, coordinators, log_event, ref_of
from .views import named
from .workflow import close

__all__ = ["TimerReport", "reminder_text", "run_timers"]

logger = logging.getLogger(__name__)


@dataclass
class TimerReport:
    """What one run did, by trainee id (for logs and tests)."""

    reminded: list[int] = field(default_factory=list)
    idle_reminded: list[int] = field(default_factory=list)
    idle_closed: list[int] = field(default_factory=list)


def run_timers(unit: Unit) -> TimerReport:
    """Send the reminders that are due and close the trainees idle for too long."""
    report = TimerReport()
    _sla_reminders(unit, report)
    _idle(unit, report)
    return report


def _claim(unit: Unit, attempt: Attempt, state: str, column: str, old: object, **values) -> bool:
    """Take one reminder for this run: false if a concurrent run took it first."""
    result = unit.session.execute(
        update(Attempt)
        .where(
            Attempt.id == attempt.id,
            Attempt.state == state,
            getattr(Attempt, column).is_(None) if old is None else getattr(Attempt, column) == old,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    unit.session.refresh(attempt)
    return result.rowcount == 1


def _sla_reminders(unit: Unit, report: TimerReport) -> None:
    now, rules = unit.now, unit.rules
    overdue = now - dt.timedelta(hours=min(rules.first_reminder_hours, rules.sla_hours))
    again = now - dt.timedelta(hours=rules.reminder_hours)
    stmt = (
        select(Attempt)
        .where(Attempt.state == READY, Attempt.ready_at <= overdue)
        .where(or_(Attempt.sla_reminded_at.is_(None), Attempt.sla_reminded_at <= again))
        .order_by(Attempt.ready_at)
    )
    keys = None
    due = unit.session.scalars(stmt).all()
    earlier = past_of(unit.session, {t.person_id for t in due}) if due else {}
    for attempt in due:
        n = attempt.sla_reminders + 1
        if not _claim(
            unit,
            attempt,
            READY,
            "sla_reminded_at",
            attempt.sla_reminded_at,
            sla_reminded_at=now,
            sla_reminders=n,
        ):
            continue
        text = reminder_text(unit, attempt, earlier.get(attempt.person_id))
        unit.notifier.cancel_notifications(ref_of(attempt), kind=REMINDER)
        keys = keys if keys is not None else [c.identity for c in coordinators(unit.session)]
        for key in keys:
            unit.notifier.notify(key, text, kind=REMINDER, ref=ref_of(attempt))
        log_event(unit, "sla_reminder", attempt.person, None, attempt, f"reminder {n}")
        report.reminded.append(attempt.id)


def reminder_text(unit: Unit, attempt: Attempt, past: Past | None) -> str:
    """The SLA reminder: who (nick and identity), how long, any earlier hold or rejection,
    what to say; one IRC line, like the ping."""
    nick, say, waited = attempt.person.name, unit.prefix, ago(unit.now, attempt.ready_at)
    promise = unit.rules.sla_hours
    due = (attempt.ready_at or unit.now) + dt.timedelta(hours=promise)
    if unit.now >= due:
        where = f"past the {promise:g}h promise"
    else:
        where = f"the {promise:g}h promise runs out in {ago(due, unit.now)}"

    def build(reason_bytes: int) -> str:
        warning = f" {past.text(reason_bytes)}." if past else ""
        return (
            f"Reminder: {named(attempt.person)} has been ready for {waited}, "
            f"{where}.{warning} "
            f"Say {say}promote {nick} (or {say}hold {nick} <why>)"
        )

    return fit(build)


def _idle(unit: Unit, report: TimerReport) -> None:
    now, days = unit.now, unit.rules.idle_days
    idle_since = now - dt.timedelta(days=days)
    to_remind = (
        select(Attempt)
        .where(Attempt.state == TRAINING, Attempt.last_activity_at <= idle_since)
        .where(Attempt.idle_reminded_at.is_(None))
        .order_by(Attempt.last_activity_at)
    )
    for attempt in unit.session.scalars(to_remind).all():
        if not _claim(unit, attempt, TRAINING, "idle_reminded_at", None, idle_reminded_at=now):
            continue
        unit.notifier.notify(
            attempt.person.identity,
            f"No helper has vouched for you in {days:g} days. Still learning? Ask in the "
            f"channel to shadow chats; without a vouch in {days:g} days your training closes.",
            kind=TO_TRAINEE,
            ref=ref_of(attempt),
        )
        log_event(unit, "idle_reminder", attempt.person, None, attempt, f"{days:g} days idle")
        report.idle_reminded.append(attempt.id)
    to_close = (
        select(Attempt)
        .where(Attempt.state == TRAINING, Attempt.idle_reminded_at <= idle_since)
        .order_by(Attempt.idle_reminded_at)
    )
    for attempt in unit.session.scalars(to_close).all():
        if close(unit, attempt, CLOSED_IDLE, None, f"idle: no vouch for {2 * days:g} days"):
            unit.notifier.notify(
                attempt.person.identity,
                "Your training closed after a long time without vouches: "
                f"say {unit.prefix}newhelper to come back.",
                kind=TO_TRAINEE,
                ref=ref_of(attempt),
            )
            report.idle_closed.append(attempt.id)

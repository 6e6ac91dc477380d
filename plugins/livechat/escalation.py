"""When IRC is not enough: mail the coordinators about a ready trainee nobody has heard of.

A ready ping waits in the outbox until a coordinator can read it on IRC. A coordinator who
does not open IRC for two days is reached by nothing, so:

- **Escalation.** A trainee ready for ``[livechat] escalate_hours`` (4 by default) whose ping
  has reached no coordinator on IRC yet (no ``ping_delivered`` or ``reminder_delivered``
  in the audit log since they became ready) makes the bot mail every coordinator with a
  confirmed address, once (``attempts.escalated_at``; ready again later, once again). If a
  coordinator was reached in time, nobody is mailed: they know.
- **Reminders.** Every SLA reminder (:mod:`.timers`) is mailed too, to the same people.

Each mail names the trainee, their vouchers (with notes) and the exact command to run, with
the configured prefix. A trainee who stops being ready before the mail has gone takes it
back (:mod:`.events`). The mail itself is queued in the same transaction and sent by the
bot's sender thread (:mod:`ircbot.courier`), never on the bot's loop.

:func:`first_reach` answers, without a database, when a coordinator first heard of a ready
trainee by either channel: the month simulation (``bench/month.py``) uses it to show what
mail adds to IRC.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Iterable

from sqlalchemy import or_, select, update

from .events import MAIL_KINDS
from .models import READY, Attempt, Event, Person
from .roles import Role
from .store import Unit, ago, log_event, ref_of, stamp
from .views import AttemptView, attempt_views, named

__all__ = [
    "ESCALATION",
    "REMINDER_MAIL",
    "first_reach",
    "irc_reached_at",
    "mail_reminders",
    "run_escalations",
    "should_escalate",
]

logger = logging.getLogger(__name__)

ESCALATION, REMINDER_MAIL = MAIL_KINDS
REACHED = ("ping_delivered", "reminder_delivered")  # audit kinds: a coordinator read it on IRC


# -- the rule, without a database ----------------------------------------------------------------
def should_escalate(
    ready_at: dt.datetime, reached_at: dt.datetime | None, now: dt.datetime, hours: float
) -> bool:
    """Mail now? Ready for ``hours`` and no coordinator reached on IRC yet."""
    return now >= ready_at + dt.timedelta(hours=hours) and reached_at is None


def first_reach(
    ready_at: dt.datetime,
    irc_reached: dt.datetime | None,
    hours: float,
    *,
    mail: bool = True,
) -> tuple[dt.datetime | None, str | None]:
    """When a coordinator first heard of a trainee ready at ``ready_at``, and how.

    ``irc_reached``: when the ping was first delivered on IRC (None: never). ``mail``: some
    coordinator has a confirmed address (and the bot a mail server). Returns
    ``(irc_reached, "irc")`` if that came first, else ``(ready_at + hours, "mail")`` (the
    moment the bot queues the mail; its job runs every minute, the sender sends at once),
    or ``(None, None)`` if neither happened.

    >>> t = dt.datetime(2026, 1, 5, 9, 0)
    >>> first_reach(t, t + dt.timedelta(hours=1), 4)[1], first_reach(t, None, 4)
    ('irc', (datetime.datetime(2026, 1, 5, 13, 0), 'mail'))
    """
    deadline = ready_at + dt.timedelta(hours=hours)
    if irc_reached is not None and (not mail or irc_reached <= deadline):
        return irc_reached, "irc"
    if mail:
        return deadline, "mail"
    return None, None


# -- the bot's job -------------------------------------------------------------------------------
def irc_reached_at(unit: Unit, trainee: Attempt) -> dt.datetime | None:
    """When a ping or reminder about this time of being ready first reached a coordinator."""
    if trainee.ready_at is None:
        return None
    stmt = (
        select(Event.at)
        .where(Event.attempt_id == trainee.id, Event.kind.in_(REACHED))
        .where(Event.at >= trainee.ready_at)
        .order_by(Event.at)
        .limit(1)
    )
    return unit.session.scalar(stmt)


def _addressed(unit: Unit) -> list[Person]:
    """Coordinators with a confirmed address."""
    stmt = (
        select(Person)
        .where(Person.role == Role.COORDINATOR, Person.email.is_not(None))
        .order_by(Person.id)
    )
    return list(unit.session.scalars(stmt))


def run_escalations(unit: Unit, *, channel: str | None) -> list[int]:
    """Mail about every trainee due for escalation; return their attempts' ids."""
    if not unit.notifier.out_of_band.mail:
        return []
    hours = unit.rules.escalate_hours
    due = unit.now - dt.timedelta(hours=hours)
    not_yet = or_(Attempt.escalated_at.is_(None), Attempt.escalated_at < Attempt.ready_at)
    stmt = (
        select(Attempt)
        .where(Attempt.state == READY, Attempt.ready_at <= due, not_yet)
        .order_by(Attempt.ready_at, Attempt.id)
    )
    mailed: list[int] = []
    recipients: list[Person] | None = None
    for trainee in unit.session.scalars(stmt).all():
        claimed = unit.session.execute(
            update(Attempt)
            .where(Attempt.id == trainee.id, Attempt.state == READY, not_yet)
            .values(escalated_at=unit.now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            continue
        reached = irc_reached_at(unit, trainee)
        assert trainee.ready_at is not None
        if not should_escalate(trainee.ready_at, reached, unit.now, hours):
            logger.info("%s: a coordinator was reached on IRC; no mail", trainee.person.name)
            continue
        recipients = _addressed(unit) if recipients is None else recipients
        if not recipients:
            logger.warning("%s: no coordinator has a mail address to escalate to", trainee)
            continue
        (view,) = attempt_views(unit.session, unit.rules, unit.now, [trainee])
        subject, body = mail_text(unit, view, reminder=False, channel=channel)
        for person in recipients:
            assert person.email is not None
            unit.notifier.mail(person.email, subject, body, kind=ESCALATION, ref=ref_of(trainee))
        names = ", ".join(p.name for p in recipients)
        log_event(unit, "escalated", trainee.person, None, trainee, f"mailed to {names}")
        mailed.append(trainee.id)
    return mailed


def mail_reminders(unit: Unit, trainee_ids: Iterable[int], *, channel: str | None) -> int:
    """Mail the SLA reminders just sent on IRC to the coordinators with an address."""
    ids = list(trainee_ids)
    if not ids or not unit.notifier.out_of_band.mail:
        return 0
    recipients = _addressed(unit)
    if not recipients:
        return 0
    trainees = list(unit.session.scalars(select(Attempt).where(Attempt.id.in_(ids))))
    sent = 0
    for view in attempt_views(unit.session, unit.rules, unit.now, trainees):
        subject, body = mail_text(unit, view, reminder=True, channel=channel)
        ref = ref_of(view.attempt)
        unit.notifier.cancel_mail(ref, (REMINDER_MAIL,))  # one reminder waiting, the latest
        for person in recipients:
            assert person.email is not None
            unit.notifier.mail(person.email, subject, body, kind=REMINDER_MAIL, ref=ref)
            sent += 1
    return sent


# -- the text ------------------------------------------------------------------------------------
def plain(text: str) -> str:
    """Text typed on IRC, for a plain-text mail: no controls (colours, CTCP), no invisibles."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def mail_text(
    unit: Unit, view: AttemptView, *, reminder: bool, channel: str | None
) -> tuple[str, str]:
    """The subject and body of an escalation or reminder mail about one ready trainee; the
    commands in it are spelled with ``[bot] prefix`` (``unit.prefix``)."""
    t, now, prefix = view.attempt, unit.now, unit.prefix
    nick = plain(view.nick)
    waited, promise = ago(now, t.ready_at), unit.rules.sla_hours
    if reminder:
        due = (t.ready_at or now) + dt.timedelta(hours=promise)
        late = now >= due
        where = f"past the {promise:g}h promise" if late else f"{ago(due, now)} before {promise:g}h"
        subject = f"Reminder: {nick} is waiting for promotion ({waited}, {where})"
        opening = (
            f"{nick} has been ready for promotion for {waited}, and nobody has acted yet: "
            + (
                f"the {promise:g}-hour promise has run out."
                if late
                else f"the {promise:g}-hour promise runs out in {ago(due, now)}."
            )
        )
    else:
        subject = f"{nick} is ready for promotion ({waited} waiting)"
        opening = (
            f"{nick} has been ready for promotion for {waited}, and the message about it has "
            "reached no coordinator on IRC."
        )
    lines = [opening, "", f"Trainee: {plain(named(t.person))}"]
    if t.chat_account:
        lines.append(f"Live-chat account: {plain(t.chat_account)}")
    lines.append(f"Ready since: {stamp(t.ready_at)} (registered {stamp(t.registered_at)})")
    lines.append(f"Vouched for by ({view.tally()}):")
    for vouch in view.vouches:
        note = f': "{plain(vouch.note)}"' if vouch.note else ""
        counts = "" if vouch.counts else " (not counted: no longer a helper)"
        lines.append(f"  - {plain(vouch.name)}, {stamp(vouch.created_at)}{counts}{note}")
    where = f"in {channel} or " if channel else ""
    lines += [
        "",
        f"To promote {nick}, say {where}to the bot in a private message:",
        "",
        f"    {prefix}promote {nick}",
        "",
        f"To pause instead: {prefix}hold {nick} <why>",
        f"From a shell where the bot runs: ircbot trainee promote {nick} --by YOUR-NAME",
        "",
        "-- ",
        f"livechat-bot. To stop these mails, say {prefix}email off to the bot in private.",
    ]
    return subject, "\n".join(lines) + "\n"

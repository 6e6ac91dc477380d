"""The weekly digest: one mail a week with who is ready, who is overdue, and the funnel.

For the coordinator who wants the state of the process without opening IRC. It goes to
every coordinator with a confirmed address who opted in (``!email digest on``), or to all of
them when ``[livechat] digest = true``, once per week at ``digest_day`` ``digest_hour`` (UTC),
or as soon after as the bot runs. The figures are those of ``ircbot report``
(:func:`.reports.funnel`) and ``!ready`` (:func:`.views.ready_list`).

Once per week per address: the week's mail carries ``ref = "digest:<date>"`` in the
out-of-band queue, and an address that already has a row with it gets no other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ircbot.outbound import Outbound

from .config import WEEKDAYS
from .escalation import plain
from .models import Person
from .reports import funnel
from .roles import Role
from .store import Unit
from .views import ready_line, ready_list

__all__ = ["DIGEST", "digest_text", "send_digests", "week_start"]

DIGEST = "digest"  # the out-of-band queue's kind
LISTED = 30  # ready trainees named in one digest; the rest are counted


def week_start(now: dt.datetime, day: str, hour: int) -> dt.datetime:
    """The latest digest time at or before ``now``: ``day`` at ``hour``:00 UTC.

    >>> week_start(dt.datetime(2026, 1, 7, 12, tzinfo=dt.UTC), "monday", 8).isoformat()
    '2026-01-05T08:00:00+00:00'
    """
    now = now.astimezone(dt.UTC)
    slot = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    slot -= dt.timedelta(days=(now.weekday() - WEEKDAYS.index(day)) % 7)
    return slot if slot <= now else slot - dt.timedelta(days=7)


def send_digests(unit: Unit, *, channel: str | None) -> list[str]:
    """Queue this week's digest for everyone due one; return the addresses."""
    if not unit.notifier.out_of_band.mail:
        return []
    rules = unit.rules
    slot = week_start(unit.now, rules.digest_day, rules.digest_hour)
    ref = f"digest:{slot.date().isoformat()}"
    stmt = select(Person).where(Person.role == Role.COORDINATOR, Person.email.is_not(None))
    if not rules.digest:
        stmt = stmt.where(Person.digest.is_(True))
    people = list(unit.session.scalars(stmt.order_by(Person.id)))
    done = set(unit.session.scalars(select(Outbound.recipient).where(Outbound.ref == ref)))
    due = [p for p in people if p.email not in done]
    if not due:
        return []
    subject, body = digest_text(unit, slot, channel=channel)
    for person in due:
        assert person.email is not None
        unit.notifier.mail(person.email, subject, body, kind=DIGEST, ref=ref)
    return [p.email for p in due if p.email]


def digest_text(unit: Unit, slot: dt.datetime, *, channel: str | None) -> tuple[str, str]:
    """The subject and body of one week's digest (commands spelled with ``unit.prefix``)."""
    rules, now, prefix = unit.rules, unit.now, unit.prefix
    total, overdue, views = ready_list(unit.session, rules, now, LISTED)
    figures = funnel(unit.session, rules, now)
    lines = [f"The trainee process, week of {slot.date().isoformat()}.", ""]
    if views:
        promise = f"{rules.sla_hours:g}h"
        lines.append(f"Ready for promotion: {total} ({overdue} past the {promise} promise)")
        lines += [f"  - {plain(ready_line(v, now))}" for v in views]
        if total > len(views):
            lines.append(f"  and {total - len(views)} more: {prefix}ready")
    else:
        lines.append("Nobody is waiting for promotion.")
    late = figures["overdue_now"]
    lines.append("Overdue now: " + (", ".join(plain(n) for n in late) if late else "nobody"))

    def hours(value: float | None) -> str:
        return "-" if value is None else f"{value}h"

    lines += [
        "",
        f"All time: registered {figures['registered']} -> ready {figures['ready']} "
        f"-> promoted {figures['promoted']}",
        f"Median time to ready {hours(figures['median_hours_to_ready'])}, "
        f"ready to promoted {hours(figures['median_hours_ready_to_promoted'])}",
        "",
    ]
    where = f" in {channel} or" if channel else ""
    lines += [
        f"To promote someone, say{where} to the bot in private: {prefix}promote NICK",
        "",
        "-- ",
        f"livechat-bot. To stop the digest, say {prefix}email digest off to the bot in private.",
    ]
    subject = f"Weekly digest: {total} ready, {overdue} overdue"
    return subject, "\n".join(lines) + "\n"

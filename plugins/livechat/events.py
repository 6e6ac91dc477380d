"""What the world outside IRC hears of an audit event: the webhook's posts, stale mail.

Every state change writes its audit event through :func:`.store.log_event`, which calls
:func:`logged` in the same transaction. Two things follow from some of them:

- **The webhook.** ``ready``, ``promoted``, ``rejected`` and ``sla_reminder`` once the
  promise has run out (posted as ``overdue``; a reminder before that posts nothing) become
  one JSON post each, queued durably (:mod:`ircbot.outbound`) when the
  bot has a ``[notify] webhook_url``. The document names the trainee by nick, their services
  account in account mode (never a ``user@host``: in hostmask mode a person's identity is
  their connection), the attempt's number, who acted and the detail the audit log keeps
  (the vouch count, the rejection's reason, the reminder's number); a ready event lists the
  vouchers. The post's ``id`` and ``at`` are added by the queue.
- **Mail made moot.** A trainee no longer ready (promoted, held, rejected, withdrawn,
  closed, back to training) needs no escalation or reminder mail still waiting to be sent:
  it is cancelled, as the IRC pings are.

This module imports only the models and the config: the store imports it, so it names the
store's unit of work by what it uses of it (:class:`Unit`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import LivechatConfig
from .models import Attempt, Person, Vouch
from .roles import Role

__all__ = ["MAIL_KINDS", "WEBHOOK_EVENTS", "logged", "payload"]


class Unit(Protocol):
    """What :func:`logged` uses of :class:`.store.Unit`."""

    session: Session
    now: dt.datetime
    rules: LivechatConfig
    notifier: Any  # a .store.Notifier


#: audit event kind -> the webhook event's name
WEBHOOK_EVENTS = {
    "ready": "ready",
    "promoted": "promoted",
    "rejected": "rejected",
    "sla_reminder": "overdue",
}
#: the out-of-band queue's kinds of mail about a ready trainee (see escalation.py)
MAIL_KINDS = ("escalation", "sla_reminder")
_NOT_READY_ANY_MORE = {"promoted", "held", "rejected", "withdrawn", "closed", "unready"}


def logged(
    unit: Unit,
    kind: str,
    person: Person,
    actor: Person | None,
    trainee: Attempt | None,
    detail: str | None,
) -> None:
    """An audit event was just written: post it and cancel what it made moot."""
    if trainee is None:
        return
    oob = unit.notifier.out_of_band
    ref = f"trainee:{trainee.id}"
    if kind in _NOT_READY_ANY_MORE and oob.mail:
        unit.notifier.cancel_mail(ref, MAIL_KINDS)
    event = WEBHOOK_EVENTS.get(kind)
    if event == "overdue" and not _overdue(unit, trainee):
        return
    if event is not None and oob.webhook:
        document = payload(unit, kind, person, actor, trainee, detail)
        unit.notifier.post_event(event, document, ref=ref)


def _overdue(unit: Unit, trainee: Attempt) -> bool:
    ready = trainee.ready_at
    return ready is not None and unit.now >= ready + dt.timedelta(hours=unit.rules.sla_hours)


def _account(person: Person) -> str | None:
    """The services account, in account mode; None for a ``user@host`` or a mask."""
    return None if "@" in person.identity else person.identity


def payload(
    unit: Unit,
    kind: str,
    person: Person,
    actor: Person | None,
    trainee: Attempt,
    detail: str | None,
) -> dict[str, Any]:
    """The JSON document of one event (without ``id``, ``event`` and ``at``)."""
    document: dict[str, Any] = {
        "trainee": {
            "nick": person.last_nick or _account(person),
            "account": _account(person),
            "attempt": trainee.id,
            "state": trainee.state,
            "chat_account": trainee.chat_account,
            "registered_at": trainee.registered_at.isoformat(),
            "ready_at": trainee.ready_at.isoformat() if trainee.ready_at else None,
        },
        "by": (actor.last_nick or _account(actor)) if actor else None,
        "detail": detail,
    }
    if kind == "ready":
        document["vouchers"] = _vouchers(unit, trainee)
    if kind == "sla_reminder" and trainee.ready_at is not None:
        hours = (unit.now - trainee.ready_at).total_seconds() / 3600
        document["waiting_hours"] = round(hours, 1)
    return document


def _vouchers(unit: Unit, trainee: Attempt) -> list[str]:
    """The names of the vouches that count, oldest first."""
    stmt = (
        select(Person.last_nick, Person.identity)
        .join(Vouch, Vouch.voucher_id == Person.id)
        .where(
            Vouch.attempt_id == trainee.id,
            Vouch.retracted_at.is_(None),
            Person.role >= Role.HELPER,
        )
        .order_by(Vouch.created_at, Vouch.id)
    )
    rows = unit.session.execute(stmt).all()
    return [nick or (None if "@" in identity else identity) or "?" for nick, identity in rows]

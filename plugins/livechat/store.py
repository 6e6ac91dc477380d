"""The plumbing under the workflow: the unit of work, lookups, counting, the audit log.

Kept apart from :mod:`.workflow` so that the rules read as rules. Nothing here decides
anything: it finds people and attempts, counts the vouches that count, and writes events.
No IRC either: names arrive already folded by whoever called.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, ScalarSelect, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ircbot import outbound, outbox
from ircbot.casemapping import CaseMapping
from ircbot.identity import identity_key
from ircbot.outbound import OutOfBand

from . import events
from .config import LivechatConfig
from .models import OPEN, Attempt, Event, Person, Vouch
from .roles import Role

__all__ = [
    "PING",
    "REMINDER",
    "TO_TRAINEE",
    "AmbiguousNick",
    "Notifier",
    "OutboxNotifier",
    "Subject",
    "Unit",
    "ago",
    "coordinators",
    "count_vouches",
    "counted_vouches",
    "find_by_name",
    "latest_attempt",
    "log_delivery",
    "log_event",
    "nick_claimant",
    "open_attempt",
    "person_by_key",
    "ref_of",
    "stamp",
    "touch",
    "voucher_column",
]

SEEN_RESOLUTION = dt.timedelta(minutes=5)

# Outbox kinds: coordinators' ready pings, their SLA reminders, messages to the trainee.
PING, REMINDER, TO_TRAINEE = "ping", "sla_reminder", "trainee"


class Notifier(Protocol):
    """Where durable messages go: the bot's context, or :class:`OutboxNotifier`.

    IRC messages to people (the outbox), and, when ``out_of_band`` says the bot has them,
    mail and webhook posts (the out-of-band queue); all in the caller's transaction.
    """

    out_of_band: OutOfBand

    def notify(
        self, recipient: str, text: str, *, kind: str = "message", ref: str | None = None
    ) -> None: ...

    def cancel_notifications(self, ref: str, kind: str | None = None) -> int: ...

    def mail(
        self, to: str, subject: str, body: str, *, kind: str, ref: str | None = None
    ) -> bool: ...

    def post_event(
        self, event: str, payload: dict[str, Any], *, ref: str | None = None
    ) -> bool: ...

    def cancel_mail(self, ref: str, kinds: tuple[str, ...]) -> int: ...


@dataclass(frozen=True)
class OutboxNotifier:
    """Durable messages straight into the tables, for callers without a bot context (the
    shell: the running bot sends them). ``out_of_band``: which of mail and webhook the
    configuration has (none by default)."""

    session: Session
    now: dt.datetime
    out_of_band: OutOfBand = field(default_factory=OutOfBand)

    def notify(
        self, recipient: str, text: str, *, kind: str = "message", ref: str | None = None
    ) -> None:
        outbox.enqueue(self.session, recipient, text, now=self.now, kind=kind, ref=ref)

    def cancel_notifications(self, ref: str, kind: str | None = None) -> int:
        return outbox.cancel(self.session, ref=ref, now=self.now, kind=kind)

    def mail(self, to: str, subject: str, body: str, *, kind: str, ref: str | None = None) -> bool:
        if not self.out_of_band.mail:
            return False
        outbound.enqueue_mail(
            self.session, to=to, subject=subject, body=body, now=self.now, kind=kind, ref=ref
        )
        return True

    def post_event(self, event: str, payload: dict[str, Any], *, ref: str | None = None) -> bool:
        if not self.out_of_band.webhook:
            return False
        outbound.enqueue_post(self.session, event=event, payload=payload, now=self.now, ref=ref)
        return True

    def cancel_mail(self, ref: str, kinds: tuple[str, ...]) -> int:
        if not self.out_of_band.mail:
            return 0
        return outbound.cancel(self.session, ref=ref, now=self.now, kinds=kinds)


@dataclass(frozen=True)
class Unit:
    """One transaction's worth of context: session, time, settings, durable messages.

    ``prefix`` is ``[bot] prefix``, how texts spell a command ("say .promote Bob"): the rules
    have no IRC in them, so whoever opens the unit (the IRC context, the command line) says.
    """

    session: Session
    now: dt.datetime
    rules: LivechatConfig
    notifier: Notifier
    prefix: str = "!"


@dataclass(frozen=True)
class Subject:
    """A person named in a command; ``person`` is None if nobody known holds or held ``nick``.

    ``offline`` means they were found by the nick they last used, not by who holds it now.
    """

    nick: str
    person: Person | None
    offline: bool = False

    @property
    def label(self) -> str:
        return f"{self.nick} (offline)" if self.offline else self.nick


def ref_of(attempt: Attempt) -> str:
    """The outbox ``ref`` of every message about one attempt (cancelled together).

    It still says ``trainee:``, from before the model was named ``Attempt``: refs are stored
    data (outbox rows, pending pings, older than the rename), read back by :func:`log_delivery`.
    """
    return f"trainee:{attempt.id}"


def ago(now: dt.datetime, then: dt.datetime | None) -> str:
    """A short duration: ``45m``, ``3h``, ``2d 4h``."""
    if then is None:
        return "?"
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days, rest = divmod(hours, 24)
    return f"{days}d {rest}h" if rest else f"{days}d"


def stamp(when: dt.datetime | None) -> str:
    """A timestamp as people read it: ``2026-01-02 14:05 UTC``."""
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "?"


def log_event(
    unit: Unit,
    kind: str,
    person: Person,
    actor: Person | None,
    attempt: Attempt | None = None,
    detail: str | None = None,
) -> None:
    """Append to the audit log; ``actor`` None is the bot, a config seed or the CLI.

    The events the world outside IRC hears about (ready, promoted, rejected, overdue) are
    posted to the webhook from here, in the same transaction (:mod:`.events`), whichever
    path changed the state: a command, a job, the shell, an import.
    """
    unit.session.add(
        Event(
            attempt_id=attempt.id if attempt else None,
            person_id=person.id,
            actor_id=actor.id if actor else None,
            kind=kind,
            detail=detail,
            at=unit.now,
        )
    )
    events.logged(unit, kind, person, actor, attempt, detail)


def person_by_key(session: Session, key: str) -> Person | None:
    return session.scalar(select(Person).where(Person.identity == key))


class AmbiguousNick(LookupError):
    """More than one person has a claim on a nick: it names none of them."""

    def __init__(self, nick: str) -> None:
        super().__init__(
            f"more than one person has used the nick {nick}: name them by account "
            "(account:NAME) or mask, or ask them to be online"
        )


def nick_claimant(session: Session, nick: str, nick_key: str) -> Person | None:
    """The one person an offline nick names, if exactly one has a claim on it.

    A claim is the nick last used by that person's own verified identity (``nick_key``,
    written only by :func:`touch` for the speaker or a verified holder) together with a stake
    worth protecting: an open attempt or a role. A stranger who takes the nick while its
    owner is away and says a command gets the nick on their own row, never the owner's; if
    the stranger then opens an attempt of their own the nick is claimed twice and names
    nobody (:class:`AmbiguousNick`) until the owner is online or named by identity.
    """
    has_open = (
        select(Attempt.id).where(Attempt.person_id == Person.id, Attempt.state.in_(OPEN)).exists()
    )
    stmt = (
        select(Person)
        .where(Person.nick_key == nick_key, (Person.role >= Role.HELPER) | has_open)
        .order_by(Person.id)
        .limit(2)
    )
    found = list(session.scalars(stmt))
    if len(found) > 1:
        raise AmbiguousNick(nick)
    return found[0] if found else None


def find_by_name(session: Session, name: str) -> Person | None:
    """A person named on the command line: identity first, else the nick's one claimant.

    Identity keys fold the same everywhere (:func:`~ircbot.identity.identity_key`). Nick keys
    were folded with the server's CASEMAPPING, and a shell has no server to ask: the two
    foldings servers announce are tried, rfc1459 (the protocol's default) first, then ascii.
    Raises :class:`AmbiguousNick` when a nick has more than one claimant.
    """
    return (
        person_by_key(session, identity_key(name))
        or nick_claimant(session, name, CaseMapping.from_name("rfc1459").fold(name))
        or nick_claimant(session, name, CaseMapping.from_name("ascii").fold(name))
    )


def touch(unit: Unit, key: str, nick: str | None = None, nick_key: str | None = None) -> Person:
    """The person with identity ``key`` (created if new), noting the nick they use now."""
    session = unit.session
    person = person_by_key(session, key)
    if person is None:
        person = Person(identity=key, role=Role.NONE, role_manual=False, created_at=unit.now)
        try:
            with session.begin_nested():
                session.add(person)
        except IntegrityError:  # created by a concurrent command a moment ago
            person = person_by_key(session, key)
            assert person is not None
    if nick and (person.last_nick != nick or person.nick_key != nick_key):
        # Several rows may hold one nick_key (whoever used the nick under their own
        # identity): naming an offline person asks :func:`nick_claimant`, which refuses
        # to choose between them.
        person.last_nick, person.nick_key = nick, nick_key
    seen = person.last_seen_at
    if nick and (seen is None or unit.now - seen >= SEEN_RESOLUTION):
        person.last_seen_at = unit.now  # coarse, so that reading commands don't all write
    return person


def open_attempt(session: Session, person_id: int, *, lock: bool = False) -> Attempt | None:
    """The person's open attempt; ``lock`` takes the row lock that serialises its changes."""
    stmt = select(Attempt).where(Attempt.person_id == person_id, Attempt.state.in_(OPEN))
    if lock:
        stmt = stmt.with_for_update(of=Attempt).execution_options(populate_existing=True)
    return session.scalar(stmt)


def latest_attempt(session: Session, person_id: int) -> Attempt | None:
    stmt = select(Attempt).where(Attempt.person_id == person_id).order_by(Attempt.id.desc())
    return session.scalar(stmt.limit(1))


def voucher_column(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    """``column`` of the vouch's author, looked up by primary key for each vouch.

    A correlated scalar subquery, not a join, on purpose. Joined, PostgreSQL may merge-join
    an attempt's few vouches with the whole ``people`` table in id order: when the vouches on
    record come mostly from long-standing helpers (low ids) that plan looks cheap, and one
    vouch by a newer helper (a high id) makes it walk every person (10-15 ms a query with
    100,000 people; ``!vouch`` ran two, ``!status`` one). A scalar subquery stays a subquery.
    """
    return select(column).where(Person.id == Vouch.voucher_id).scalar_subquery()


def _counted(stmt: Select, attempt_id: int) -> Select:
    return stmt.where(
        Vouch.attempt_id == attempt_id,
        Vouch.retracted_at.is_(None),
        voucher_column(Person.role) >= Role.HELPER,
    )


def counted_vouches(session: Session, attempt_id: int) -> list[Vouch]:
    """The vouches that count now: not retracted, by someone who is still a helper."""
    stmt = _counted(select(Vouch), attempt_id).order_by(Vouch.created_at, Vouch.id)
    # The vouchers by primary key too (a joined eager load is a join: see voucher_column).
    return list(session.scalars(stmt.options(selectinload(Vouch.voucher))))


def count_vouches(session: Session, attempt_id: int) -> int:
    stmt = _counted(select(func.count()).select_from(Vouch), attempt_id)
    return session.scalar(stmt) or 0


def coordinators(session: Session) -> list[Person]:
    stmt = select(Person).where(Person.role == Role.COORDINATOR).order_by(Person.id)
    return list(session.scalars(stmt))


def log_delivery(session: Session, message: outbox.OutboxMessage) -> None:
    """Record in the audit log that a coordinator's ping or reminder reached them."""
    ref = message.ref or ""  # "trainee:<attempt id>", see ref_of
    if message.kind not in (PING, REMINDER) or not ref.startswith("trainee:"):
        return
    attempt = session.get(Attempt, int(ref.partition(":")[2]))
    if attempt is None:
        return
    recipient = person_by_key(session, message.recipient)
    kind = "ping_delivered" if message.kind == PING else "reminder_delivered"
    to = recipient.name if recipient else message.recipient
    at = message.delivered_at or message.created_at
    session.add(
        Event(
            attempt_id=attempt.id, person_id=attempt.person_id, kind=kind, detail=f"to {to}", at=at
        )
    )

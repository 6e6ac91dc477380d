"""The tables of the trainee process: people, attempts, vouches and the audit log.

Why this shape:

- A :class:`Person` is an *identity* (services account, or ``user@host`` in hostmask mode),
  never a nick: nicks change and can be taken by someone else. ``last_nick`` is only how to
  reach or name them; ``nick_key`` (the nick folded with the server's casemapping) is held by
  at most the one person who used it last, so naming an offline person by nick finds who
  last used it and nobody else.
- An :class:`Attempt` is one try by a person (the *trainee*) at becoming a helper. Rejected,
  withdrawn or idle attempts stay as history; ``!newhelper`` afterwards opens a new one. At
  most one attempt per person is open (training, ready or on hold), enforced by a partial
  unique index that SQLite and PostgreSQL both understand.
- A :class:`Vouch` belongs to an attempt, one per helper per attempt; withdrawing it sets
  ``retracted_at`` rather than deleting, so the record stays.
- An :class:`Event` is written for every state change, with its actor (NULL: the bot itself,
  a config seed or the command line) and time: it is what ``!history`` and ``report`` read.

The indexes serve the hot queries (``!ready``, ``!status``, ``!vouch``, ``!trainees``), which
stay index lookups with 100,000 attempts and 1,000,000 vouches.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ircbot.storage import Base, UTCDateTime

from .roles import Role

__all__ = ["CLOSED", "OPEN", "STATES", "Attempt", "Event", "Person", "RoleType", "Vouch"]

TRAINING, READY, ON_HOLD = "training", "ready", "on_hold"
PROMOTED, REJECTED, WITHDRAWN, CLOSED_IDLE = "promoted", "rejected", "withdrawn", "closed"
OPEN = (TRAINING, READY, ON_HOLD)
CLOSED = (PROMOTED, REJECTED, WITHDRAWN, CLOSED_IDLE)
STATES = OPEN + CLOSED

_OPEN_SQL = "state IN ('training', 'ready', 'on_hold')"
_STATES_SQL = "state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")"


class RoleType(TypeDecorator[Role]):
    """A :class:`Role` stored as its integer, so ``role >= 2`` works in SQL."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)

    def process_result_value(self, value: Any, dialect: Any) -> Role | None:
        return None if value is None else Role(value)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[Role] = mapped_column(RoleType(), default=Role.NONE, index=True)
    # Set once a coordinator or the CLI decided this person's role: config seeds then no
    # longer apply to them (after the first start, the database is the source of truth).
    role_manual: Mapped[bool] = mapped_column(Boolean, default=False)
    last_nick: Mapped[str | None] = mapped_column(String(64))
    nick_key: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Mail (see contact.py): the confirmed address escalations and digests go to; an address
    # awaiting its code (kept as a SHA-256), until when, how many wrong tries; the digest.
    email: Mapped[str | None] = mapped_column(String(320))
    email_pending: Mapped[str | None] = mapped_column(String(320))
    email_code: Mapped[str | None] = mapped_column(String(64))
    email_code_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    email_code_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    @property
    def name(self) -> str:
        """How to name them in a reply: the last nick they used, else their identity."""
        return self.last_nick or self.identity

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.identity!r} {self.role.label}>"


class Attempt(Base):
    """One attempt by one person to become a helper."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    state: Mapped[str] = mapped_column(String(16), default=TRAINING)
    state_since: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    chat_account: Mapped[str | None] = mapped_column(String(255))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ready_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    promoted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    promoted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    hold_reason: Mapped[str | None] = mapped_column(Text)
    held_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    close_reason: Mapped[str | None] = mapped_column(Text)
    # Registration or the last vouch: what "idle" is measured from.
    last_activity_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    idle_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sla_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sla_reminders: Mapped[int] = mapped_column(Integer, default=0)
    # When coordinators were mailed because the ready ping reached none of them on IRC
    # (escalation.py); earlier than ready_at: about an earlier time it was ready.
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    person: Mapped[Person] = relationship(foreign_keys=[person_id], lazy="joined")
    promoted_by: Mapped[Person | None] = relationship(foreign_keys=[promoted_by_id])
    held_by: Mapped[Person | None] = relationship(foreign_keys=[held_by_id])
    closed_by: Mapped[Person | None] = relationship(foreign_keys=[closed_by_id])

    __table_args__ = (
        CheckConstraint(_STATES_SQL, name="state"),
        # One open attempt per person (partial unique index: SQLite >= 3.8 and PostgreSQL).
        Index(
            "uq_attempts_open_person",
            "person_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index("ix_attempts_person_id_id", "person_id", "id"),
        Index("ix_attempts_state_ready_at", "state", "ready_at"),
        Index("ix_attempts_state_registered_at", "state", "registered_at"),
        Index("ix_attempts_state_last_activity_at", "state", "last_activity_at"),
    )

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    def __repr__(self) -> str:
        return f"<Attempt {self.id} person={self.person_id} {self.state}>"


class Vouch(Base):
    """A helper's word that a trainee is ready; one per helper per attempt."""

    __tablename__ = "vouches"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    voucher_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retracted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    voucher: Mapped[Person] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("attempt_id", "voucher_id"),)


class Event(Base):
    """One line of the audit log: what changed, about whom, by whom, when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    actor: Mapped[Person | None] = relationship(foreign_keys=[actor_id], lazy="joined")

    __table_args__ = (
        Index("ix_audit_events_attempt_id_id", "attempt_id", "id"),
        Index("ix_audit_events_person_id_id", "person_id", "id"),
    )

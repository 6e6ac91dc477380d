"""The out-of-band queue: mail and webhook posts that must not be lost, as table rows.

Like the IRC outbox (:mod:`ircbot.outbox`), a row is written *in the same transaction* as
the change that caused it, so a rolled-back change sends nothing and a committed one sends
its message even across a crash. Unlike the outbox it waits for a network endpoint, not for
a person: the sender (:mod:`ircbot.courier`) sends due rows from a thread of its own and
records each result in a short transaction of its own.

**The guarantee: at least once, and a repeat carries the same id.** Each row gets its id
when it is written (``message_id``: the mail's ``Message-ID``, the webhook's
``Idempotency-Key``) and keeps it through every retry. A row is marked sent only after the
endpoint accepted it; if the bot dies between the two, the row is still due after the
restart and is sent once more with the same id, so a receiver that remembers ids drops the
copy. An endpoint that is down is retried with exponential backoff and jitter, for as long
as it takes; only a permanent refusal (a 5xx SMTP reply to a recipient, a 4xx HTTP status
other than 408 and 429) ends a row as ``failed``, logged, its row kept.

Sent, failed and cancelled rows are deleted after ``[bot] outbox_retention_days``
(:func:`prune`), as the outbox's are.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Index, Integer, String, Text, delete, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import Executable

from ircbot.storage import Base, UTCDateTime

__all__ = [
    "MAIL",
    "WEBHOOK",
    "OutOfBand",
    "Outbound",
    "cancel",
    "due",
    "enqueue_mail",
    "enqueue_post",
    "mark_failed",
    "mark_sent",
    "next_due",
    "prune",
    "retry_later",
]

MAIL, WEBHOOK = "mail", "webhook"
ID_DOMAIN = "livechat-bot"  # the right-hand side of every Message-ID the bot makes


class Outbound(Base):
    """One mail or one webhook post, from its writing until sent, failed or cancelled."""

    __tablename__ = "outbound"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # MAIL or WEBHOOK
    # The stable id, chosen once: the Message-ID (without <>) or the Idempotency-Key.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipient: Mapped[str | None] = mapped_column(String(320))  # the address; NULL: webhook
    subject: Mapped[str | None] = mapped_column(Text)  # mail; the event's name for a webhook
    body: Mapped[str] = mapped_column(Text)  # the mail's text, or the JSON posted
    kind: Mapped[str] = mapped_column(String(50))
    # Groups messages about one thing (e.g. "trainee:42"), as in the outbox.
    ref: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_outbound_pending", "sent_at", "failed_at", "cancelled_at", "next_attempt_at"),
    )

    @property
    def header_id(self) -> str:
        """The Message-ID header's value: ``<id>``."""
        return f"<{self.message_id}>"


@dataclass(frozen=True)
class OutOfBand:
    """Which out-of-band channels this bot has, and how to wake its sender.

    Handed to every context (:class:`ircbot.context.BaseContext`), so a plugin can ask
    whether mail is set up before promising one, and so a commit that wrote rows wakes the
    sender at once rather than at its next poll. The default has neither channel: nothing is
    written, which is what a bot without ``[notify]`` settings, or a test, wants.
    """

    mail: bool = False
    webhook: bool = False
    wake: Callable[[], None] = field(default=lambda: None, compare=False)


def _rowcount(session: Session, stmt: Executable) -> int:
    """Rows an UPDATE or DELETE touched."""
    return int(cast(CursorResult[Any], session.execute(stmt)).rowcount)


def _pending() -> tuple[Any, ...]:
    return (
        Outbound.sent_at.is_(None),
        Outbound.failed_at.is_(None),
        Outbound.cancelled_at.is_(None),
    )


def new_id() -> str:
    """A fresh stable id: a random UUID at the bot's domain (valid as a Message-ID)."""
    return f"{uuid.uuid4().hex}@{ID_DOMAIN}"


def enqueue_mail(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    now: dt.datetime,
    kind: str,
    ref: str | None = None,
) -> Outbound:
    """Add one mail to the caller's transaction, due at once."""
    row = Outbound(
        channel=MAIL,
        message_id=new_id(),
        recipient=to,
        subject=subject,
        body=body,
        kind=kind,
        ref=ref,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(row)
    return row


def enqueue_post(
    session: Session,
    *,
    event: str,
    payload: dict[str, Any],
    now: dt.datetime,
    ref: str | None = None,
) -> Outbound:
    """Add one webhook post to the caller's transaction, due at once.

    The JSON is made now, with the row's id and the time in it, so every retry posts the
    very same bytes (and so the same signature).
    """
    message_id = new_id()
    document = {"id": message_id, "event": event, "at": now.isoformat(), **payload}
    row = Outbound(
        channel=WEBHOOK,
        message_id=message_id,
        recipient=None,
        subject=event,
        body=json.dumps(document, sort_keys=True, ensure_ascii=False),
        kind=event,
        ref=ref,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
    )
    session.add(row)
    return row


def cancel(session: Session, *, ref: str, now: dt.datetime, kinds: tuple[str, ...]) -> int:
    """Cancel the pending rows about ``ref`` of these kinds (a mail made moot); say how many."""
    stmt = update(Outbound).where(Outbound.ref == ref, Outbound.kind.in_(kinds), *_pending())
    return _rowcount(session, stmt.values(cancelled_at=now))


def due(session: Session, now: dt.datetime, *, limit: int) -> list[Outbound]:
    """Rows to send now, the longest-waiting first, detached from ``session`` once read."""
    stmt = (
        select(Outbound)
        .where(*_pending(), Outbound.next_attempt_at <= now)
        .order_by(Outbound.next_attempt_at, Outbound.id)
        .limit(limit)
    )
    rows = list(session.scalars(stmt))
    session.expunge_all()
    return rows


def next_due(session: Session) -> dt.datetime | None:
    """When the earliest pending row is due (None: nothing pending)."""
    return session.scalar(select(func.min(Outbound.next_attempt_at)).where(*_pending()))


def mark_sent(session: Session, row_id: int, now: dt.datetime) -> bool:
    """Record a send; false if the row was cancelled or recorded meanwhile."""
    stmt = (
        update(Outbound)
        .where(Outbound.id == row_id, *_pending())
        .values(sent_at=now, attempts=Outbound.attempts + 1, last_error=None)
    )
    return _rowcount(session, stmt) == 1


def retry_later(session: Session, row_id: int, when: dt.datetime, error: str) -> int:
    """Record a failed try and when to try again; return the number of tries so far."""
    session.execute(
        update(Outbound)
        .where(Outbound.id == row_id, *_pending())
        .values(next_attempt_at=when, attempts=Outbound.attempts + 1, last_error=error[:1000])
    )
    return session.scalar(select(Outbound.attempts).where(Outbound.id == row_id)) or 0


def mark_failed(session: Session, row_id: int, now: dt.datetime, error: str) -> None:
    """A permanent refusal: the row stays, as failed, and is not tried again."""
    session.execute(
        update(Outbound)
        .where(Outbound.id == row_id, *_pending())
        .values(failed_at=now, attempts=Outbound.attempts + 1, last_error=error[:1000])
    )


def prune(session: Session, *, before: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` rows sent, failed or cancelled before ``before``."""
    done = or_(
        Outbound.sent_at < before, Outbound.failed_at < before, Outbound.cancelled_at < before
    )
    batch = select(Outbound.id).where(done).limit(limit)
    stmt = delete(Outbound).where(Outbound.id.in_(batch))
    return _rowcount(session, stmt.execution_options(synchronize_session=False))

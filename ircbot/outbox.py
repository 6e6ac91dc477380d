"""The durable outbox: messages for people that must not be lost.

A plugin that changes state and must tell someone about it (a coordinator's ping, a trainee's
"you're ready") writes an :class:`OutboxMessage` *in the same transaction* as the change. If
the transaction rolls back, the message never existed; if it commits, the message exists until
it is delivered, across restarts. The recipient is a person (an identity key: a services
account, or user@host in hostmask mode), not a nick, because nicks change and can be taken.

Delivery (in :mod:`ircbot.delivery`) marks a row delivered only after its line has gone out on
the socket, so a crash can at worst repeat a message, never lose one.

Delivered and cancelled rows are deleted after ``[bot] outbox_retention_days`` (:func:`prune`,
run by the bot every hour in small batches): the table is a queue, not the history. What was
sent when stays in the plugins' audit logs (livechat logs every ping it delivers).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Index,
    String,
    Text,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ircbot import storage
from ircbot.storage import Base, UTCDateTime

__all__ = [
    "OutboxMessage",
    "cancel",
    "enqueue",
    "mark_delivered",
    "pending_for",
    "pending_recipients",
    "prune",
    "prune_expired",
]

logger = logging.getLogger(__name__)
PRUNE_BATCH = 500  # rows per delete transaction
PRUNE_BATCHES = 20  # transactions per prune run


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(50), default="message")
    # Groups messages about one thing (e.g. "trainee:42:ready") so they can be cancelled together.
    ref: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_outbox_recipient_pending", "recipient", "delivered_at", "cancelled_at"),
    )


def _rowcount(session: Session, stmt: Executable) -> int:
    """Rows an UPDATE or DELETE touched (its result is a cursor result)."""
    return int(cast(CursorResult[Any], session.execute(stmt)).rowcount)


def _pending() -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (OutboxMessage.delivered_at.is_(None), OutboxMessage.cancelled_at.is_(None))


def enqueue(
    session: Session,
    recipient: str,
    text: str,
    *,
    now: dt.datetime,
    kind: str = "message",
    ref: str | None = None,
) -> OutboxMessage:
    """Add a message for ``recipient`` to the caller's transaction."""
    message = OutboxMessage(recipient=recipient, text=text, kind=kind, ref=ref, created_at=now)
    session.add(message)
    return message


def cancel(session: Session, *, ref: str, now: dt.datetime, kind: str | None = None) -> int:
    """Cancel the pending messages about ``ref`` (optionally of one kind); say how many."""
    stmt = update(OutboxMessage).where(OutboxMessage.ref == ref, *_pending())
    if kind is not None:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return _rowcount(session, stmt.values(cancelled_at=now))


def pending_for(session: Session, recipient: str) -> list[OutboxMessage]:
    """The recipient's undelivered messages, oldest first."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.recipient == recipient, *_pending())
        .order_by(OutboxMessage.id)
    )
    return list(session.scalars(stmt))


def pending_recipients(session: Session) -> set[str]:
    """Everyone who has something waiting: the people whose arrival the bot watches for."""
    return set(session.scalars(select(OutboxMessage.recipient).where(*_pending()).distinct()))


def mark_delivered(session: Session, message_id: int, now: dt.datetime) -> bool:
    """Record one delivery; false if it was cancelled or delivered meanwhile."""
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, *_pending())
        .values(delivered_at=now)
    )
    return _rowcount(session, stmt) == 1


def prune(session: Session, *, before: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` rows delivered or cancelled before ``before``; say how many.

    Pending rows are never touched. A batch at a time, so each transaction holds the write
    lock for a moment only (the caller loops while a full batch was deleted).
    """
    done = or_(OutboxMessage.delivered_at < before, OutboxMessage.cancelled_at < before)
    batch = select(OutboxMessage.id).where(done).limit(limit)
    stmt = delete(OutboxMessage).where(OutboxMessage.id.in_(batch))
    return _rowcount(session, stmt.execution_options(synchronize_session=False))


def prune_expired(
    session_factory: Any,
    *,
    before: dt.datetime,
    queries: Sequence[Callable[..., int]] = (prune,),
) -> int:
    """Delete the rows each of ``queries`` (:func:`prune`, or another queue's alike) finds
    done before ``before``; say how many in all.

    Batches of :data:`PRUNE_BATCH` rows, each its own short write transaction, at most
    :data:`PRUNE_BATCHES` a run per query: a first run on a large backlog is spread over
    several hours instead of holding the bot (and the write lock) for long. Busy: next run.
    """
    total = 0
    for query in queries:
        for _ in range(PRUNE_BATCHES):
            try:
                with storage.transaction(session_factory) as session:
                    deleted = query(session, before=before, limit=PRUNE_BATCH)
            except Exception as exc:
                if not storage.is_busy(exc):
                    logger.exception("pruning the outbox failed")
                else:
                    logger.warning("pruning the outbox: the database is busy; next time")
                break
            total += deleted
            if deleted < PRUNE_BATCH:
                break
    if total:
        logger.info("pruned %d outbox messages delivered or cancelled before %s", total, before)
    return total

"""The sender of the out-of-band queue: a thread that mails and posts what is due.

Why a thread: an SMTP exchange or an HTTP post can take seconds, and a server that is down
can take the whole ``[notify] timeout`` to say so. The bot serves everyone from one loop, so
the network I/O happens here, never there. The thread shares nothing with the loop but the
database: it reads due rows (no lock), sends one with no transaction open, then records the
result in a short transaction of its own. The loop only wakes it (:meth:`Courier.wake`,
thread-safe) when a commit wrote rows; otherwise it looks again when the earliest pending
row falls due, and at least every :data:`POLL` seconds (rows written by the shell).

Retries: a failed send is tried again after ``retry_min`` seconds, then twice as long each
time up to ``retry_max`` (exponential backoff), each delay drawn between half and all of
that (jitter, so that many rows failing together do not retry together). The schedule is
stored in the row (``next_attempt_at``), so a restart keeps it.

Order of events for one row: send, then record. A crash in between leaves the row due, and
it is sent again with the same id after the restart (see :mod:`ircbot.outbound`). A record
that fails (a busy database) is retried from memory before anything else is sent, so only a
crash repeats a message.

Test hook: with the environment variable :data:`HOLD_ENV` set to ``1`` the thread logs
``holding before recording outbound N`` after a successful send and then waits until the bot
stops, without recording: a test kills the process at exactly that point. Never set it in
production: nothing more would be sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from ircbot import outbound
from ircbot.clock import Clock
from ircbot.mailer import Mailer, SendError, compose
from ircbot.outbound import MAIL, WEBHOOK, Outbound
from ircbot.storage import is_busy, reading, transaction
from ircbot.webhook import WebhookPoster

__all__ = ["HOLD_ENV", "POLL", "Courier", "backoff"]

logger = logging.getLogger(__name__)

POLL = 30.0  # seconds between looks at the queue when nothing woke the thread
BATCH = 20  # rows read per look
HOLD_ENV = "IRCBOT_TEST_HOLD_AFTER_SEND"


def backoff(attempts: int, first: float, longest: float, draw: Callable[[], float]) -> float:
    """Seconds to wait after the ``attempts``-th failed try (1, 2, ...).

    ``first * 2**(attempts-1)``, at most ``longest``, then scaled by a draw from [0.5, 1):

    >>> backoff(1, 30, 3600, lambda: 1.0), backoff(4, 30, 3600, lambda: 0.0)
    (30.0, 120.0)
    >>> backoff(30, 30, 3600, lambda: 1.0)
    3600.0
    """
    ceiling = min(longest, first * 2.0 ** min(attempts - 1, 60))
    return ceiling * (0.5 + draw() / 2)


class Courier:
    """Sends due mail and webhook rows from its own thread; see the module's docstring."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        *,
        mailer: Mailer | None = None,
        mail_from: str = "",
        poster: WebhookPoster | None = None,
        retry_min: float = 30.0,
        retry_max: float = 3600.0,
        hold_after_send: bool = False,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.mailer = mailer
        self.mail_from = mail_from
        self.poster = poster
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.hold_after_send = hold_after_send
        self.draw = draw
        self.channels = tuple(c for c, on in ((MAIL, mailer), (WEBHOOK, poster)) if on)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._unrecorded: dict[int, dt.datetime] = {}  # sent, record failed: row id -> when
        self._thread: threading.Thread | None = None

    # -- the loop's side (thread-safe) ----------------------------------------------------
    def start(self) -> None:
        if self._thread is None and self.channels:
            self._thread = threading.Thread(target=self._main, name="courier", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Rows were committed: look at the queue now."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the send in progress (bounded by ``[notify] timeout``) and end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("the sender is still busy with a send; not waiting for it")

    # -- the thread -----------------------------------------------------------------------
    def _main(self) -> None:
        logger.info("sending %s from the out-of-band queue", " and ".join(self.channels))
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                if is_busy(exc):
                    logger.warning("out-of-band queue: the database is busy; next look soon")
                else:
                    logger.exception("out-of-band queue: a look at the queue failed")
            self._wake.wait(self._sleep())
            self._wake.clear()

    def _sleep(self) -> float:
        if self._unrecorded:
            return 1.0
        try:
            with reading(self.session_factory) as session:
                nxt = outbound.next_due(session)
        except Exception:
            return POLL
        if nxt is None:
            return POLL
        return min(POLL, max(0.5, (nxt - self.clock.now()).total_seconds()))

    def run_once(self) -> int:
        """Send every row due now (in batches); return how many were tried."""
        self._record_unrecorded()
        tried = 0
        while not self._stop.is_set():
            with reading(self.session_factory) as session:
                rows = [
                    r
                    for r in outbound.due(session, self.clock.now(), limit=BATCH)
                    if r.channel in self.channels and r.id not in self._unrecorded
                ]
            for row in rows:
                if self._stop.is_set():
                    break
                self._send(row)
                tried += 1
            if len(rows) < BATCH:
                break
        return tried

    def _send(self, row: Outbound) -> None:
        what = f"{row.channel} {row.id} ({row.kind})"
        try:
            self._deliver(row)
        except SendError as exc:
            self._failed(row, what, str(exc), permanent=exc.permanent)
            return
        except Exception as exc:  # a bug, or a row that cannot be composed: retried, logged
            logger.exception("%s: could not be sent", what)
            self._failed(row, what, f"{type(exc).__name__}: {exc}", permanent=False)
            return
        sent_at = self.clock.now()
        if self.hold_after_send:
            logger.warning("%s sent; holding before recording outbound %d", what, row.id)
            self._stop.wait()
            return
        self._unrecorded[row.id] = sent_at
        self._record_unrecorded()
        logger.info("%s sent (%s)", what, row.message_id)

    def _deliver(self, row: Outbound) -> None:
        if row.channel == MAIL:
            assert self.mailer is not None and row.recipient is not None
            message = compose(
                sender=self.mail_from,
                to=row.recipient,
                subject=row.subject or "",
                body=row.body,
                message_id=row.message_id,
                date=row.created_at.timestamp(),
            )
            self.mailer.send(message)
        else:
            assert self.poster is not None
            self.poster.post(row.body, event=row.subject or row.kind, key=row.message_id)

    def _record_unrecorded(self) -> None:
        """Mark sent what was sent; on a busy database keep it for the next look."""
        for row_id, sent_at in list(self._unrecorded.items()):
            try:
                with transaction(self.session_factory) as session:
                    outbound.mark_sent(session, row_id, sent_at)
            except Exception as exc:
                if not is_busy(exc):
                    logger.exception("could not record the send of outbound %d", row_id)
                else:
                    logger.warning("database busy: the send of outbound %d not recorded", row_id)
                return
            del self._unrecorded[row_id]

    def _failed(self, row: Outbound, what: str, reason: str, *, permanent: bool) -> None:
        now = self.clock.now()
        try:
            with transaction(self.session_factory) as session:
                if permanent:
                    outbound.mark_failed(session, row.id, now, reason)
                    tries = row.attempts + 1
                else:
                    delay = backoff(row.attempts + 1, self.retry_min, self.retry_max, self.draw)
                    when = now + dt.timedelta(seconds=delay)
                    tries = outbound.retry_later(session, row.id, when, reason)
        except Exception as exc:
            if not is_busy(exc):
                logger.exception("could not record the failure of %s", what)
            else:
                logger.warning("database busy: the failure of %s not recorded", what)
            return
        if permanent:
            logger.error("%s refused, not tried again: %s", what, reason)
        else:
            logger.warning("%s failed (try %d): %s; next try in %.0f s", what, tries, reason, delay)

"""The output queue: every line the bot says goes through one token bucket, in fair turns.

IRC servers disconnect or throttle clients that send too fast, and a bot that floods is a bot
that is gone exactly when a burst of commands arrives. jaraco's ``set_rate_limit`` sleeps on
the reactor thread, which stalls reading (and PONG) too; this queue never sleeps. A line goes
out at once while the bucket has tokens (no latency at all for the common case), otherwise
it waits and :meth:`OutputQueue.drain` sends it when the event loop comes round, which it
does as soon as :meth:`OutputQueue.next_due` says.

What waits is not one line of FIFO: with one queue, a dozen people asking at once, or one
person asking for a 31-line history again and again, kept everyone else waiting for half a
minute and more, and a WHOIS the bot needed waited behind them all. So there are three lanes,
each emptied before the next gets a token:

1. **protocol**: JOIN, WHO, WHOIS, NICK...: what the bot needs in order to work at all;
2. **priority**: durable deliveries from the outbox (a coordinator's ping), which are few
   and were promised;
3. **replies**: chat answers, queued per *requester* (the person the answer is for, or the
   channel of an announcement) and sent in turns, one line per requester per turn.

A requester who had nothing waiting takes the very next turn; the others go round in order.
So a short question is answered within a line or two however busy the queue is, while
someone with a long backlog still gets a line every round. Each requester's backlog is
capped (``[bot] reply_backlog`` lines, pieces of a line split at 512 bytes counting one each):
past it the rest of that answer is dropped and the requester gets one short notice to ask
for less at a time. PONG, CAP, AUTHENTICATE and QUIT never come here at all (see transport).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ircbot.ratelimit import TokenBucket

__all__ = ["CUT_NOTICE", "Lane", "OnSent", "OutputQueue", "Requester"]

logger = logging.getLogger(__name__)

OnSent = Callable[[], None]
CUT_NOTICE = "That answer was cut short: ask again with a page number, or in private."


class Lane(enum.IntEnum):
    """Where a line waits; a lower lane always goes first."""

    PROTOCOL = 0
    PRIORITY = 1
    REPLY = 2


@dataclass(frozen=True, eq=False)
class Requester:
    """The person (or channel) one answer is for: whose share its lines count against.

    ``key`` names the share (a folded ``user@host``, or a channel); ``nick`` is whom to tell
    when the answer is cut short (None: nobody, as for a channel). Each instance is one
    answer: lines put with the same instance belong together, so once one of them is
    dropped, the rest of that answer is dropped too, rather than leaving a hole in it.
    """

    key: str
    nick: str | None = None


_Item = tuple[str, OnSent | None]


class OutputQueue:
    """Lines waiting for the bucket. ``write`` returns False when the line could not be sent."""

    def __init__(
        self, bucket: TokenBucket, write: Callable[[str], bool], *, backlog: int = 10
    ) -> None:
        if backlog < 1:
            raise ValueError("backlog must be >= 1")
        self.bucket = bucket
        self.write = write
        self.backlog = backlog
        self.dropped = 0  # reply lines dropped over the cap, for the log and the tests
        self._lanes: dict[Lane, deque[_Item]] = {Lane.PROTOCOL: deque(), Lane.PRIORITY: deque()}
        self._replies: dict[str, deque[_Item]] = {}
        self._turns: deque[str] = deque()  # requesters with replies waiting, next first
        self._cut: dict[str, Requester] = {}  # the answer being dropped, per requester
        self._told: set[str] = set()  # requesters already sent the notice for this backlog

    def __len__(self) -> int:
        return sum(map(len, self._lanes.values())) + sum(map(len, self._replies.values()))

    def waiting(self, key: str) -> int:
        """Reply lines waiting for requester ``key`` (their notice included)."""
        return len(self._replies.get(key, ()))

    def put(self, line: str, on_sent: OnSent | None = None, lane: Lane = Lane.PROTOCOL) -> None:
        """Send a protocol or priority line now if allowed and nothing waits ahead of it in
        its lane or a lower one, else queue it: a new line never overtakes one that waits."""
        if lane is Lane.REPLY:
            raise ValueError("replies go through put_reply, with their requester")
        ahead = any(q for other, q in self._lanes.items() if other <= lane)
        if not ahead and self.bucket.take():
            self._send(line, on_sent)
        else:
            self._lanes[lane].append((line, on_sent))

    def put_reply(self, requester: Requester, line: str, on_sent: OnSent | None = None) -> bool:
        """Queue one line of an answer for ``requester``; False if it was dropped (the cap)."""
        key = requester.key
        lines = self._replies.get(key)
        if lines is None:
            # Nothing was waiting for them: theirs is the next turn, or the line goes now.
            if not any(self._lanes.values()) and self.bucket.take():
                self._send(line, on_sent)
                return True
            lines = self._replies[key] = deque()
            self._turns.appendleft(key)
        if self._cut.get(key) is requester or len(lines) >= self.backlog:
            self._drop(requester, lines)
            return False
        lines.append((line, on_sent))
        return True

    def _drop(self, requester: Requester, lines: deque[_Item]) -> None:
        key = requester.key
        self.dropped += 1
        if self._cut.get(key) is not requester:
            self._cut[key] = requester
            logger.info("answer for %s cut short at %d waiting lines", key, len(lines))
        if requester.nick and key not in self._told:
            self._told.add(key)
            lines.append((f"NOTICE {requester.nick} :{CUT_NOTICE}", None))

    def _next(self) -> _Item:
        for lane in self._lanes.values():
            if lane:
                return lane.popleft()
        key = self._turns.popleft()
        lines = self._replies[key]
        item = lines.popleft()
        if lines:
            self._turns.append(key)
        else:  # their backlog is gone: the next answer starts afresh
            del self._replies[key]
            self._cut.pop(key, None)
            self._told.discard(key)
        return item

    def _send(self, line: str, on_sent: OnSent | None) -> None:
        if self.write(line) and on_sent is not None:
            on_sent()

    def drain(self) -> None:
        """Send what the bucket allows now, protocol lane first, replies in turns."""
        while (self._turns or any(self._lanes.values())) and self.bucket.take():
            self._send(*self._next())

    def next_due(self) -> float | None:
        """Seconds until a queued line may go out; None when nothing waits."""
        if self._turns or any(self._lanes.values()):
            return self.bucket.wait_time()
        return None

    def clear(self) -> int:
        """Drop what waits (the connection is gone); durable messages are redelivered anyway."""
        dropped = len(self)
        for lane in self._lanes.values():
            lane.clear()
        self._replies.clear()
        self._turns.clear()
        self._cut.clear()
        self._told.clear()
        return dropped

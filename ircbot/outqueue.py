"""The output queue: every line the bot says goes through a token bucket.

IRC servers disconnect clients that send too fast ("Excess Flood"), and a bot that floods is
a bot that is gone exactly when a burst of commands arrives. jaraco's ``set_rate_limit``
sleeps on the reactor thread, which stalls reading (and PONG) too; this queue never sleeps.
A line goes out at once while the bucket has tokens (no latency at all for the common case),
otherwise it waits and :meth:`OutputQueue.drain` sends it when the event loop comes round,
which it does as soon as :meth:`OutputQueue.next_due` says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ircbot.ratelimit import TokenBucket

__all__ = ["OutputQueue"]

OnSent = Callable[[], None]


class OutputQueue:
    """Lines waiting for the bucket. ``write`` returns False when the line could not be sent."""

    def __init__(self, bucket: TokenBucket, write: Callable[[str], bool]) -> None:
        self.bucket = bucket
        self.write = write
        self._items: deque[tuple[str, OnSent | None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, line: str, on_sent: OnSent | None = None) -> None:
        """Send now if allowed and nothing is waiting (order is kept), else queue."""
        if not self._items and self.bucket.take():
            self._send(line, on_sent)
        else:
            self._items.append((line, on_sent))

    def _send(self, line: str, on_sent: OnSent | None) -> None:
        if self.write(line) and on_sent is not None:
            on_sent()

    def drain(self) -> None:
        """Send what the bucket allows now."""
        while self._items and self.bucket.take():
            line, on_sent = self._items.popleft()
            self._send(line, on_sent)

    def next_due(self) -> float | None:
        """Seconds until a queued line may go out; None when nothing waits."""
        return self.bucket.wait_time() if self._items else None

    def clear(self) -> int:
        """Drop what waits (the connection is gone); durable messages are redelivered anyway."""
        dropped = len(self._items)
        self._items.clear()
        return dropped

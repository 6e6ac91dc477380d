"""Token buckets: the one rate-limit shape used for both our output and users' commands.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second. Sending a line
(or running a command) takes a token; with none left, the caller waits. This allows short
bursts, which is what IRC servers tolerate (ngircd and Solanum both allow a few lines at once,
then about one a second or two), while capping the long-run rate.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket on an injected monotonic clock.

    >>> t = [0.0]
    >>> b = TokenBucket(burst=2, rate=1.0, clock=lambda: t[0])
    >>> b.take(), b.take(), b.take()
    (True, True, False)
    >>> b.wait_time()
    1.0
    >>> t[0] = 1.5
    >>> b.take(), b.take()
    (True, False)
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, burst: float, rate: float, clock: Callable[[], float]) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("burst must be >= 1 and rate > 0")
        self.burst = float(burst)
        self.rate = float(rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> bool:
        """Take one token if there is one; say whether it was taken."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next token is available (0 if one is available now)."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def is_full(self) -> bool:
        """Whether the bucket is back at its burst: a per-user bucket then can be dropped."""
        self._refill()
        return self._tokens >= self.burst

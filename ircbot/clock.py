"""Time as a dependency.

Every piece of the bot that needs "now" takes a :class:`Clock`, so that a test can move time
forward (SLA reminders, idle closes) without sleeping and without patching globals.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "utcnow"]


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Wall-clock time, aware, UTC: what gets stored and shown."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: what rate limits and timeouts use."""


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to, for tests and simulations."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._mono = 1000.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move both clocks forward by ``seconds`` plus any ``timedelta`` keyword (hours=...)."""
        step = dt.timedelta(seconds=seconds, **delta)
        self._now += step
        self._mono += step.total_seconds()

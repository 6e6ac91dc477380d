"""Periodic jobs on the monotonic clock, run from the bot's loop.

Why not jaraco's scheduler: it keeps wall-clock due times and replays every period it missed.
After a suspend, a paused VM or a clock step of 15 days, a job due every minute ran 21,600
times in a row (18 s of CPU) before the bot could answer anyone, and a step backwards stopped
the jobs for as long as the step. Here:

* due times are on the bot's monotonic clock (:meth:`ircbot.clock.Clock.monotonic`);
* a job that missed any number of periods runs once, and its next run is one period after
  that (:func:`next_run`): the jobs (SLA reminders, the delivery sweep) look at "now", so one
  run catches up on all the missed time;
* a due time more than one period ahead can only mean the clock went back (libfaketime, a
  restored snapshot): it is pulled in to one period from now (:func:`clamp`), so a step
  backwards delays a job by one period at most.

The runner has no thread of its own: the loop asks :meth:`JobRunner.wait` how long it may sleep
and calls :meth:`JobRunner.run_due` on every turn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["JobRunner", "clamp", "next_run"]

logger = logging.getLogger(__name__)


def next_run(due: float, every: float, now: float) -> float:
    """When a job that was due at ``due`` and runs at ``now`` is due next.

    On time, or late by less than a period, it keeps its cadence (``due + every``: no drift).
    Later than that, the missed runs are dropped rather than replayed: the next run is one
    period after this one.
    """
    following = due + every
    return following if following > now else now + every


def clamp(due: float, every: float, now: float) -> float:
    """``due``, unless it is further ahead than one period: then ``now + every``."""
    return min(due, now + every)


@dataclass
class _Entry:
    name: str
    every: float
    fn: Callable[[], Any]
    due: float


class JobRunner:
    """Jobs that run every so many seconds of the given monotonic clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._entries: list[_Entry] = []

    def add(
        self, name: str, every: float, fn: Callable[[], Any], *, first: float | None = None
    ) -> None:
        """Run ``fn`` every ``every`` seconds, the first time ``first`` seconds from now
        (default: one period, as jaraco's ``execute_every`` did)."""
        if not every > 0 or math.isinf(every):
            raise ValueError(f"job {name!r}: the period must be a positive number, not {every!r}")
        delay = every if first is None else first
        self._entries.append(_Entry(name, every, fn, self.clock() + delay))

    def wait(self) -> float:
        """Seconds until the next job is due (0 if one is; ``inf`` without jobs)."""
        now = self.clock()
        waits = (clamp(e.due, e.every, now) - now for e in self._entries)
        return max(0.0, min(waits, default=math.inf))

    def run_due(self) -> list[str]:
        """Run each job that is due, once; return their names in the order they ran.

        The next due time is set before the job runs, so a job that raises is not retried on
        every turn: the error goes up to the loop, as it would from any other call there.
        """
        ran = []
        for entry in self._entries:
            now = self.clock()
            entry.due = clamp(entry.due, entry.every, now)
            if now < entry.due:
                continue
            late = now - entry.due
            if late >= entry.every:
                logger.info("job %s: %.0f s late, missed runs dropped", entry.name, late)
            entry.due = next_run(entry.due, entry.every, now)
            ran.append(entry.name)
            logger.debug("job %s ran", entry.name)
            entry.fn()
        return ran

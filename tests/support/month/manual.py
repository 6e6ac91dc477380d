"""The seed's manual process, run on the same :class:`~.scenario.Plan`, in pure Python.

How the team worked before the bot, modelled as it was and no better: one coordinator could
promote, with one set of hours (the European coordinator's, weekends away included). A
helper's word that a trainee is ready reaches that coordinator only if they are present at
the moment it is said (the vouch that completes the threshold); said while they are away, it
is lost: nothing holds it and nothing reminds anyone. A coordinator who hears it acts with the
same probability, after the same delay, as in the bot's run (:func:`~.scenario.decision`).
The backlog's twenty sign-ups were ready before the period and nobody told anyone again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .scenario import Plan, decision, window_at

__all__ = ["ManualTrainee", "run_manual"]


@dataclass(frozen=True)
class ManualTrainee:
    name: str
    ready_at: dt.datetime | None  # None: ready before the period (the backlog)
    reached_at: dt.datetime | None
    promoted_at: dt.datetime | None
    backlog: bool


def run_manual(plan: Plan) -> list[ManualTrainee]:
    """Every trainee who reached ready in the period or came from the backlog."""
    coordinator = plan.member(plan.manual_coordinator)
    threshold = plan.params.threshold
    out = [ManualTrainee(b.nick, None, None, None, True) for b in plan.backlog]
    for t in plan.trainees:
        times = sorted(when for _, when in t.vouches)
        if len(times) < threshold or times[threshold - 1] >= plan.end:
            continue
        ready = times[threshold - 1]
        window = window_at(coordinator.windows, ready)
        if window is None:  # said while the coordinator was away: lost
            out.append(ManualTrainee(t.nick, ready, None, None, False))
            continue
        acts, delay = decision(plan.params, coordinator.nick, f"word about {t.nick}")
        promoted = min(ready + delay, window.end) if acts else None
        out.append(ManualTrainee(t.nick, ready, ready, promoted, False))
    return out

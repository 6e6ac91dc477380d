"""The month's script: who is around when, who arrives, who vouches when. Pure and seeded.

Both runs read the same :class:`Plan`: the bot on a real server (:mod:`.world`) and the manual
process it replaces (:mod:`.manual`), so their figures differ only by the process. Times are
aware UTC datetimes; a person's presence is a list of :class:`Window` (connected, in the
channel and not away).

The team the issue describes: three coordinators eight hours a day in UTC-8, UTC+1 and UTC+8,
each away on some weekend days; twelve helpers four to six hours a day, spread over the time
zones volunteers live in; trainees arriving over the period, 60 % of them at a moment when no
coordinator is present; two helpers vouching for each, during their own hours, a few days
after the arrival (one in ten gets a single vouch and never becomes ready); twenty sign-ups
from the old process's backlog, imported on the first day with the vouches they had; one
coordinator leaving the team mid-period; the bot killed once and the server restarted once.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BacklogEntry",
    "Member",
    "Params",
    "Plan",
    "TraineePlan",
    "Window",
    "decision",
    "make_plan",
    "next_arrival",
    "present",
    "scaled",
    "window_at",
]

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
#: A Monday, so the weekends fall on days 5-6, 12-13...
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
HELPER_OFFSETS = (-8.0, -6.0, -5.0, -3.0, 0.0, 1.0, 1.0, 2.0, 3.0, 5.5, 8.0, 10.0)


@dataclass(frozen=True)
class Params:
    """The knobs of a run; ``p_act`` is the chance a coordinator acts on one ping or reminder."""

    seed: int = 1
    days: int = 30
    p_act: float = 0.5
    trainees: tuple[int, int] = (40, 60)
    outside_share: float = 0.6
    backlog: int = 20
    vouch_after_days: tuple[float, float] = (1.0, 4.0)
    single_vouch_share: float = 0.1
    weekend_away: float = 0.5
    threshold: int = 2
    sla_hours: float = 24.0
    first_reminder_hours: float = 12.0
    reminder_hours: float = 12.0
    escalate_hours: float = 4.0  # the mail rule the figures apply (no mail is sent)


def scaled(days: int, **knobs: Any) -> Params:
    """The month's scenario over ``days``: as many trainees a day (at least six), vouches
    coming sooner (a few tenths of the period) so that some become ready."""
    scale = min(1.0, days / 30)
    trainees = (max(6, round(40 * scale)), max(8, round(60 * scale)))
    soon = min(1.0, days / 10)
    vouch_after = (1.0 * soon, 4.0 * soon)
    return Params(days=days, trainees=trainees, vouch_after_days=vouch_after, **knobs)


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    def __contains__(self, t: dt.datetime) -> bool:
        return self.start <= t < self.end


@dataclass
class Member:
    """A coordinator or helper: a nick, an ident of their own (their identity in hostmask
    mode), a time zone and the windows they are present in."""

    nick: str
    ident: str
    role: str  # "coordinator" or "helper"
    utc_offset: float
    windows: list[Window]
    #: Stays connected off hours with AWAY set, instead of quitting.
    away_mode: bool = False


@dataclass
class TraineePlan:
    nick: str
    ident: str
    arrives: dt.datetime
    stays: dt.timedelta
    outside: bool  # no coordinator present when they arrive
    vouches: list[tuple[str, dt.datetime]] = field(default_factory=list)  # (helper, when)


@dataclass
class BacklogEntry:
    nick: str
    ident: str
    vouchers: tuple[str, ...]
    signed_up: dt.datetime


@dataclass
class Plan:
    params: Params
    start: dt.datetime
    end: dt.datetime
    coordinators: list[Member]
    helpers: list[Member]
    trainees: list[TraineePlan]
    backlog: list[BacklogEntry]
    import_at: dt.datetime
    leaver: str
    remover: str
    leave_at: dt.datetime
    kill_at: dt.datetime  # the bot is killed as this coordinator arrival happens
    kill_arrival: str
    server_restart_at: dt.datetime
    #: The seed's process had one coordinator: this one, with the same hours.
    manual_coordinator: str

    def member(self, nick: str) -> Member:
        return next(m for m in [*self.coordinators, *self.helpers] if m.nick == nick)


def decision(params: Params, coordinator: str, about: str) -> tuple[bool, dt.timedelta]:
    """Whether ``coordinator`` acts on the message ``about`` (a ping, a reminder, a helper's
    word) and how long after reading it: a draw of its own per (seed, person, message), so
    the two processes and any timing of the run give the same answer."""
    rng = random.Random(f"{params.seed}/{coordinator}/{about}")
    return rng.random() < params.p_act, dt.timedelta(minutes=rng.uniform(2, 20))


def window_at(windows: list[Window], t: dt.datetime) -> Window | None:
    """The window holding ``t``, if any (windows sorted and disjoint)."""
    i = bisect.bisect_right([w.start for w in windows], t) - 1
    return windows[i] if i >= 0 and t in windows[i] else None


def present(member: Member, t: dt.datetime) -> bool:
    return window_at(member.windows, t) is not None


def next_arrival(windows: list[Window], t: dt.datetime) -> dt.datetime | None:
    """The start of the first window that starts at or after ``t``."""
    starts = [w.start for w in windows]
    i = bisect.bisect_left(starts, t)
    return starts[i] if i < len(starts) else None


def _daily(
    rng: random.Random,
    start: dt.datetime,
    end: dt.datetime,
    offset: float,
    local_start: float,
    hours: tuple[float, float],
    skip: float,
    weekend_skip: float,
) -> list[Window]:
    """One window a day at about ``local_start`` local time, clipped to [start, end)."""
    windows: list[Window] = []
    for d in range(-1, (end - start).days + 2):
        day = start + d * DAY
        if rng.random() < (weekend_skip if day.weekday() >= 5 else skip):
            continue
        begin = day + dt.timedelta(hours=local_start - offset + rng.uniform(-1.0, 1.0))
        length = dt.timedelta(hours=rng.uniform(*hours))
        w = Window(max(begin, start), min(begin + length, end))
        if w.start < w.end and (not windows or w.start >= windows[-1].end):
            windows.append(w)
    return windows


def _merge(windows: list[Window]) -> list[Window]:
    out: list[Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if out and w.start <= out[-1].end:
            out[-1] = Window(out[-1].start, max(out[-1].end, w.end))
        else:
            out.append(w)
    return out


def make_plan(params: Params) -> Plan:
    """The whole scenario for ``params`` (same seed, same plan)."""
    rng = random.Random(params.seed)
    start, end = START, START + params.days * DAY
    span = end - start
    coordinators = [
        Member(
            nick,
            ident,
            "coordinator",
            offset,
            _daily(rng, start, end, offset, 9.0, (8.0, 8.0), 0.0, params.weekend_away),
            away_mode=away,
        )
        for nick, ident, offset, away in (
            ("co_west", "cowest", -8.0, True),
            ("co_europe", "coeurope", 1.0, False),
            ("co_asia", "coasia", 8.0, False),
        )
    ]
    helpers = [
        Member(
            f"he_{i:02}",
            f"help{i:02}",
            "helper",
            offset,
            _daily(rng, start, end, offset, rng.uniform(8.0, 20.0), (4.0, 6.0), 1 / 7, 0.3),
        )
        for i, offset in enumerate(HELPER_OFFSETS)
    ]
    # The leaver: UTC+8, removed by the European coordinator mid-period while both are there.
    leaver, remover = coordinators[2], coordinators[1]
    mid = start + span / 2
    leave_at = next(
        w.start + (w.end - w.start) / 2 for w in remover.windows if w.start >= mid - DAY / 2
    )
    leaver.windows = [w for w in leaver.windows if w.end <= leave_at]

    def outside(t: dt.datetime) -> bool:
        return not any(present(c, t) for c in coordinators)

    n = rng.randint(*params.trainees)
    n_out = round(n * params.outside_share)
    arrivals: list[tuple[dt.datetime, bool]] = []
    wanted = {True: n_out, False: n - n_out}
    # Late enough arrivals would not be vouched for before the end: nothing to measure.
    last = end - min(span / 2, dt.timedelta(days=params.vouch_after_days[1] + 0.5))
    while any(wanted.values()):
        t = start + HOUR + (last - start - HOUR) * rng.random()
        t = t.replace(second=0, microsecond=0)
        key = outside(t)
        if wanted[key]:
            wanted[key] -= 1
            arrivals.append((t, key))
    arrivals.sort()
    trainees = []
    for i, (t, out) in enumerate(arrivals):
        plan = TraineePlan(f"tr_{i:02}", f"tr{i:02}", t, dt.timedelta(hours=rng.uniform(1, 3)), out)
        count = 1 if rng.random() < params.single_vouch_share else params.threshold
        for helper in rng.sample(helpers, count):
            target = t + dt.timedelta(days=rng.uniform(*params.vouch_after_days))
            w = next((w for w in helper.windows if w.end > target), None)
            if w is None:
                continue
            begin = max(w.start, target)
            when = begin + (w.end - begin) * rng.uniform(0.05, 0.9)
            plan.vouches.append((helper.nick, when.replace(microsecond=0)))
        trainees.append(plan)
    # On day 1, by the coordinator who runs the shell; the vouchers must be helpers the bot
    # has seen by then (a masked helper is on the team from the moment the bot sees them).
    import_at, seen = start, []
    for w in remover.windows:
        import_at = w.start + 4 * HOUR
        seen = [h for h in helpers if h.windows and h.windows[0].start < import_at - HOUR]
        if len(seen) >= params.threshold:
            break
    backlog = [
        BacklogEntry(
            f"bl_{i:02}",
            f"bl{i:02}",
            tuple(h.nick for h in rng.sample(seen, params.threshold)),
            start - dt.timedelta(days=rng.uniform(20, 200)),
        )
        for i in range(params.backlog)
    ]
    kill_from = start + span * 0.4
    kill_coord = coordinators[1]
    kill_at = next(w.start for w in kill_coord.windows if w.start >= kill_from)
    restart = start + span * rng.uniform(0.65, 0.75)
    return Plan(
        params=params,
        start=start,
        end=end,
        coordinators=coordinators,
        helpers=helpers,
        trainees=trainees,
        backlog=backlog,
        import_at=import_at,
        leaver=leaver.nick,
        remover=remover.nick,
        leave_at=leave_at.replace(microsecond=0),
        kill_at=kill_at,
        kill_arrival=kill_coord.nick,
        server_restart_at=restart.replace(second=0, microsecond=0),
        manual_coordinator=coordinators[1].nick,
    )

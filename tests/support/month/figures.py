"""The figures of the issue's table, for the bot's run and the manual process, and the four
properties the bot must hold.

The bot's figures come from what the coordinators' connections received (stamped in
simulated time) and from its audit log (ready, promoted, held, rejected, sla_reminder), never
from the outbox's idea of what went out. Definitions:

- *reached*: a coordinator's connection received a ping or a reminder naming the trainee;
- *next arrival*: for a message written while the coordinator was away, the start of their
  next presence (connected, in the channel and not away); while present, its writing;
- *lost*: a ping a coordinator on the team never received although they were present
  between the trainee becoming ready and being reviewed;
- *past 24 h without any reminder*: still unreviewed 24 h after becoming ready, with no SLA
  reminder written by then (the timers job runs once a minute: one minute of grace);
- *reviewed*: promoted, put on hold or rejected.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field

from ircbot_plugins.livechat.escalation import first_reach

from .manual import ManualTrainee
from .scenario import Plan
from .world import ABOUT, CATCH_UP, Observations, about

__all__ = ["Figures", "bot_figures", "check", "manual_figures", "table"]

PROMISE = dt.timedelta(hours=24)
GRACE = dt.timedelta(minutes=1)
REVIEWED = ("promoted", "held", "rejected")


@dataclass
class Figures:
    ready: int = 0
    promoted: int = 0
    promoted_24h: int = 0
    reach: list[float] = field(default_factory=list)  # seconds; inf: never reached
    # The same, had every coordinator a confirmed mail address: the bot's own escalation
    # rule (mail after escalate_hours without an IRC delivery) applied to what IRC did.
    reach_any: list[float] = field(default_factory=list)
    arrival_delay_max: float = 0.0  # seconds; inf: some message never reached anyone
    lost: int = 0
    unreminded: int = 0
    unreviewed: int = 0
    unreviewed_recent: int = 0  # of which ready less than 24 h before the end
    backlog_unreviewed: int = 0
    twice: int = 0
    reminders_written: int = 0


def _first_at_or_after(intervals: list[list[dt.datetime]], t: dt.datetime) -> dt.datetime | None:
    for start, end in intervals:
        if start <= t < end:
            return t
        if start >= t:
            return start
    return None


def bot_figures(plan: Plan, obs: Observations) -> Figures:
    f = Figures()
    ready: dict[int, tuple[str, dt.datetime]] = {}
    reviewed: dict[int, dt.datetime] = {}
    promoted: dict[int, dt.datetime] = {}
    reminders: dict[str, list[dt.datetime]] = {}
    catch_ups: dict[str, list[dt.datetime]] = {}
    for row in obs.audit:
        if row.kind == "catch_up":
            catch_ups.setdefault(row.person, []).append(row.at)
        if row.attempt_id is None:
            continue
        if row.kind == "ready" and row.attempt_id not in ready:
            ready[row.attempt_id] = (row.person, row.at)
        elif row.kind in REVIEWED and row.attempt_id not in reviewed:
            reviewed[row.attempt_id] = row.at
            if row.kind == "promoted":
                promoted[row.attempt_id] = row.at
        elif row.kind == "sla_reminder":
            reminders.setdefault(row.person, []).append(row.at)
            f.reminders_written += 1
    firsts: dict[tuple[str, str], dt.datetime] = {}
    for coordinator, got in obs.received.items():
        named = [
            (when, text, nick)
            for when, text in got
            for nick in _covers(text, when, coordinator, ready, reviewed, catch_ups)
        ]
        texts = Counter(text for _, text in got if about(text))
        f.twice += sum(n - 1 for n in texts.values() if n > 1)
        for when, text, nick in named:
            firsts.setdefault((coordinator, nick), when)
            if ABOUT.match(text):
                written = _written(text, nick, ready, reminders, when)
            else:  # a catch-up: written when the coordinator joined the team
                written = max(t for t in catch_ups[coordinator] if t <= when)
            arrival = _first_at_or_after(obs.presence[coordinator], written)
            delay = (when - arrival).total_seconds() if arrival is not None else math.inf
            f.arrival_delay_max = max(f.arrival_delay_max, delay)
    f.ready = len(ready)
    for tid, (nick, at) in ready.items():
        done = reviewed.get(tid)
        f.promoted += tid in promoted
        f.promoted_24h += tid in promoted and promoted[tid] - at <= PROMISE
        reached = [firsts[(c, nick)] for c in obs.received if (c, nick) in firsts]
        f.reach.append((min(reached) - at).total_seconds() if reached else math.inf)
        by_any, _ = first_reach(at, min(reached) if reached else None, plan.params.escalate_hours)
        f.reach_any.append((by_any - at).total_seconds() if by_any else math.inf)
        if done is None:
            f.unreviewed += 1
            f.unreviewed_recent += plan.end - at < PROMISE
            f.backlog_unreviewed += nick.startswith("bl_")
        if (done or plan.end) > at + PROMISE and not any(
            at < r <= at + PROMISE + GRACE for r in reminders.get(nick, [])
        ):
            f.unreminded += 1
        f.lost += _lost(obs, nick, at, done or plan.end, firsts)
    return f


def _covers(
    text: str,
    received: dt.datetime,
    coordinator: str,
    ready: dict[int, tuple[str, dt.datetime]],
    reviewed: dict[int, dt.datetime],
    catch_ups: dict[str, list[dt.datetime]],
) -> list[str]:
    """The trainees a message tells a coordinator about. A catch-up names the ten oldest and
    counts the rest ("and 4 more — say !ready"): it covers every trainee waiting when it was
    written, as its count says."""
    named = about(text)
    match = CATCH_UP.match(text)
    if match is None:
        return named
    written = max(t for t in catch_ups[coordinator] if t <= received)
    waiting = [
        nick
        for tid, (nick, at) in ready.items()
        if at <= written and reviewed.get(tid, received) >= written
    ]
    total = int(text.split(" ", 1)[0])
    return waiting if len(waiting) == total and set(named) <= set(waiting) else named


def _written(
    text: str,
    nick: str,
    ready: dict[int, tuple[str, dt.datetime]],
    reminders: dict[str, list[dt.datetime]],
    received: dt.datetime,
) -> dt.datetime:
    """When the message was written: the ready event for a ping, the last reminder before it
    arrived for a reminder."""
    if text.startswith("Reminder: "):
        return max(r for r in reminders.get(nick, []) if r <= received)
    return max(at for name, at in ready.values() if name == nick and at <= received)


def _lost(
    obs: Observations,
    nick: str,
    at: dt.datetime,
    until: dt.datetime,
    firsts: dict[tuple[str, str], dt.datetime],
) -> int:
    lost = 0
    for coordinator, intervals in obs.presence.items():
        gone = obs.removed_at.get(coordinator)
        if gone is not None and gone <= at:
            continue
        arrival = _first_at_or_after(intervals, at)
        if arrival is None or arrival >= until or (gone is not None and arrival >= gone):
            continue
        lost += (coordinator, nick) not in firsts
    return lost


def manual_figures(plan: Plan, trainees: list[ManualTrainee]) -> Figures:
    f = Figures()
    for t in trainees:
        f.ready += 1
        done = t.promoted_at
        if done is not None:
            f.promoted += 1
            assert t.ready_at is not None
            f.promoted_24h += done - t.ready_at <= PROMISE
        reach = math.inf if t.reached_at is None or t.ready_at is None else 0.0
        f.reach.append(reach)
        if t.reached_at is None:
            f.lost += 1  # the word was said while the coordinator was away
            f.arrival_delay_max = math.inf
        if done is None:
            f.unreviewed += 1
            f.unreviewed_recent += t.ready_at is not None and plan.end - t.ready_at < PROMISE
            f.backlog_unreviewed += t.backlog
        start = t.ready_at or plan.start - PROMISE
        if (done or plan.end) > start + PROMISE:
            f.unreminded += 1  # nothing reminds anyone
    return f


def check(f: Figures) -> list[str]:
    """The four properties the bot must show; each failure named."""
    failures = []
    if f.arrival_delay_max > 60:
        failures.append(f"a ping reached a coordinator {_dur(f.arrival_delay_max)} after arrival")
    if f.unreminded:
        failures.append(f"{f.unreminded} ready trainees passed 24 h without a reminder")
    if f.backlog_unreviewed:
        failures.append(f"{f.backlog_unreviewed} sign-ups from the backlog left unreviewed")
    if f.lost or f.twice:
        failures.append(f"{f.lost} pings lost, {f.twice} delivered twice")
    return failures


def _dur(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _reach(f: Figures, values: list[float] | None = None) -> str:
    values = f.reach if values is None else values
    if not values:
        return "-"
    return " / ".join(_dur(_pct(values, q)) for q in (0.5, 0.95, 1.0))


def table(manual: Figures, bot: Figures) -> str:
    """The issue's table, manual process beside the bot."""

    def delay(f: Figures) -> str:
        if math.isinf(f.arrival_delay_max):
            return f"never ({f.lost} words lost)" if f.lost else "never"
        return _dur(f.arrival_delay_max)

    def unreviewed(f: Figures) -> str:
        recent = f" ({f.unreviewed_recent} ready < 24 h)" if f.unreviewed_recent else ""
        return f"{f.unreviewed}{recent}, backlog {f.backlog_unreviewed}"

    rows = [
        ("trainees who reached ready", manual.ready, bot.ready),
        ("promoted", manual.promoted, bot.promoted),
        ("promoted within 24 h of ready", manual.promoted_24h, bot.promoted_24h),
        ("time ready → first coordinator reached (p50 / p95 / max)", _reach(manual), _reach(bot)),
        (
            "the same by IRC or mail, had every coordinator an address (p50 / p95 / max)",
            "-",
            _reach(bot, bot.reach_any),
        ),
        (
            "delay between a coordinator's next arrival and the ping reaching them (max)",
            delay(manual),
            f"{delay(bot)}, {bot.lost} lost",
        ),
        ("ready trainees past 24 h without any reminder", manual.unreminded, bot.unreminded),
        ("never reviewed at the end of the month", unreviewed(manual), unreviewed(bot)),
        ("pings delivered twice", "-", bot.twice),
    ]
    lines = ["| figure | manual process | the bot |", "|---|---|---|"]
    lines += [f"| {name} | {m} | {b} |" for name, m, b in rows]
    return "\n".join(lines)

"""A demo database: four months of a team's trainee process, played through the workflow.

For trying ``ircbot report --html`` (and the IRC commands) on something that looks like a
real team without copying anyone's data: ``scripts/demo-db demo.db`` or
``python -m ircbot_plugins.livechat.demo demo.db``. Every change goes through the same
:mod:`.workflow` and :mod:`.timers` functions as the bot's commands, each in its own
transaction at its own simulated time, so the audit log, the outbox and the timers' reminders
are what the bot would have written. The seed fixes who does what; the times end at "now".

The story: a handful of coordinators and a score of helpers; about three people sign up a
day; most are vouched for within a few weeks and promoted, usually within the 24 hours
promised, sometimes later; some withdraw, some are rejected, some go quiet and are closed
by the idle timer, a few are put on hold. A few people are ready right now, some overdue.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import itertools
import random
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update

from ircbot.outbox import OutboxMessage
from ircbot.storage import make_engine, make_session_factory, migrate, transaction

from .config import LivechatConfig
from .declaration import plugin
from .roles import Role
from .store import OutboxNotifier, Subject, Unit, person_by_key, touch
from .team import set_role
from .timers import run_timers
from .workflow import WorkflowError, hold, promote, register, reject, unhold, vouch, withdraw

__all__ = ["build_demo"]

COORDINATORS = ("mira", "tomasz", "adaeze", "lena")
HELPERS = (
    "jonas", "priya", "kwame", "sofia", "ren", "noor", "mateo", "ingrid", "tariq", "elif",
    "dmitri", "aiko", "femi", "carmen", "oskar", "yusuf", "hannah", "luis",
)  # fmt: skip
FIRST = (
    "amara", "bjorn", "chen", "dana", "eli", "farah", "gus", "hana", "ivo", "jules", "kofi",
    "lior", "maya", "nico", "omar", "pia", "quinn", "rosa", "sami", "tess", "umar", "vera",
    "wen", "xavi", "yara", "zeno", "aline", "bruno", "cleo", "dev", "emre", "fiona", "goran",
    "hugo", "iris", "jana", "kai", "lena_m", "milo", "nadia", "otto", "paz", "rafa", "sven",
    "talia", "ugo", "vik", "wanda", "yoko", "zara",
)  # fmt: skip
NOTES = (
    None,
    None,
    "calm with an angry customer, good escalation",
    "took the second half of a billing chat alone",
    "clear, kind answers; checks the docs first",
    "handled three chats at once without dropping one",
    "knows the refund rules better than I do",
    "good at asking the right follow-up question",
    "shadowed me twice, ready to go",
)
HOLD_REASONS = ("waiting for the chat account", "on holiday until next month", "asked for a pause")
REJECT_REASONS = (
    "copied answers without checking them",
    "rude to a customer in a shadowed chat",
    "not ready: rushes the answers",
)
WITHDRAW_REASONS = ("not enough time right now", "moving to another team", None)

Action = Callable[[Unit], object]


class Simulation:
    """A queue of dated actions, each run in its own transaction at its own time."""

    def __init__(self, factory, rules: LivechatConfig, rng: random.Random) -> None:
        self.factory, self.rules, self.rng = factory, rules, rng
        self.queue: list[tuple[dt.datetime, int, Action]] = []
        self.order = itertools.count()

    def at(self, when: dt.datetime, action: Action) -> None:
        heapq.heappush(self.queue, (when, next(self.order), action))

    def run_until(self, end: dt.datetime) -> None:
        while self.queue and self.queue[0][0] <= end:
            when, _, action = heapq.heappop(self.queue)
            try:
                with transaction(self.factory) as session:
                    action(Unit(session, when, self.rules, OutboxNotifier(session, when)))
            except WorkflowError:  # the story met a rule (promoted already, say): as on IRC
                continue


def _who(unit: Unit, name: str) -> Subject:
    return Subject(name, person_by_key(unit.session, name))


def _person(unit: Unit, name: str):
    return touch(unit, name, name, name)


def _plan_trainee(sim: Simulation, nick: str, start: dt.datetime, now: dt.datetime) -> None:
    """Register ``nick`` at ``start`` and schedule how their attempt goes."""
    rng = sim.rng
    chat = f"{nick}.chat" if rng.random() < 0.6 else None
    sim.at(start, lambda u: register(u, _person(u, nick), chat))
    fate = rng.choices(("promoted", "withdrawn", "rejected", "idle", "held"), (62, 11, 7, 14, 6))[0]
    helpers = rng.sample(HELPERS, 4)
    coordinator = rng.choice(COORDINATORS[:3] * 3 + COORDINATORS[3:])

    def vouch_at(when: dt.datetime, helper: str) -> None:
        note = rng.choice(NOTES)
        sim.at(when, lambda u: vouch(u, _person(u, helper), _who(u, nick), note))

    if fate == "idle":
        if rng.random() < 0.5:
            vouch_at(start + dt.timedelta(days=rng.uniform(1, 6)), helpers[0])
        return  # the idle timer reminds, then closes
    if fate in ("withdrawn", "rejected"):
        end = start + dt.timedelta(days=rng.uniform(2, 20))
        if rng.random() < 0.6:
            vouch_at(start + (end - start) * 0.4, helpers[0])
        if fate == "withdrawn":
            reason = rng.choice(WITHDRAW_REASONS)
            sim.at(end, lambda u: withdraw(u, _person(u, nick), reason))
            again = end + dt.timedelta(days=rng.uniform(10, 40))
            if rng.random() < 0.35 and again < now - dt.timedelta(days=1):
                _plan_trainee(sim, nick, again, now)  # back for a second attempt
        else:
            why = rng.choice(REJECT_REASONS)
            sim.at(end, lambda u: reject(u, _person(u, coordinator), _who(u, nick), why))
        return
    first = start + dt.timedelta(days=rng.uniform(0.5, 9))
    second = first + dt.timedelta(days=rng.lognormvariate(1.0, 0.8))
    vouch_at(first, helpers[0])
    if fate == "held":
        pause = first + dt.timedelta(days=rng.uniform(0.5, 3))
        reason = rng.choice(HOLD_REASONS)
        sim.at(pause, lambda u: hold(u, _person(u, coordinator), _who(u, nick), reason))
        if rng.random() < 0.5:
            back = pause + dt.timedelta(days=rng.uniform(5, 20))
            sim.at(back, lambda u: unhold(u, _person(u, coordinator), _who(u, nick)))
            second = back + dt.timedelta(days=rng.uniform(1, 6))
        else:
            return
    vouch_at(second, helpers[1])  # the threshold (2): ready, coordinators pinged
    if rng.random() < 0.4:
        vouch_at(second + dt.timedelta(hours=rng.uniform(1, 30)), helpers[2])
    if now - second < dt.timedelta(days=4) and rng.random() < 0.7:
        return  # ready lately, and nobody has promoted them yet: some of them overdue
    wait = rng.lognormvariate(2.2, 0.75)  # hours: a median near 9 h, a tail past 24 h
    sim.at(
        second + dt.timedelta(hours=wait),
        lambda u: promote(u, _person(u, coordinator), _who(u, nick)),
    )


def build_demo(url: str, *, seed: int = 11, days: int = 120, now: dt.datetime | None = None) -> int:
    """Write the demo into the (new, empty) database at ``url``; return the attempts made."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    engine = make_engine(url)
    try:
        migrate(engine, [plugin.migrations] if plugin.migrations else [])
        factory = make_session_factory(engine)
        rules = LivechatConfig()
        sim = Simulation(factory, rules, rng)
        start = now - dt.timedelta(days=days)
        with transaction(factory) as session:
            then = start - dt.timedelta(days=30)
            unit = Unit(session, then, rules, OutboxNotifier(session, then))
            for name in COORDINATORS:
                set_role(unit, _person(unit, name), Role.COORDINATOR, None, manual=True, why="demo")
            for name in HELPERS:
                set_role(unit, _person(unit, name), Role.HELPER, None, manual=True, why="demo")
        names = (
            f"{first}{suffix}"
            for suffix in ("", "_", "2", "_x", "42", "-c", "_b", "7", "__", "_k")
            for first in FIRST
        )
        attempts = 0
        day = start
        while day < now:
            for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
                signup = day + dt.timedelta(hours=rng.uniform(0, 24))
                if signup < now - dt.timedelta(hours=2):
                    _plan_trainee(sim, next(names), signup, now)
                    attempts += 1
            day += dt.timedelta(days=1)
            sim.run_until(day)
            sim.at(day, run_timers)
        sim.run_until(now)
        with transaction(factory) as session:  # what a running bot would have sent by now
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.cancelled_at.is_(None),
                    OutboxMessage.created_at < now - dt.timedelta(days=2),
                )
                .values(delivered_at=OutboxMessage.created_at)
            )
        return attempts
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the SQLite file to create")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--days", type=int, default=120, help="how much history")
    args = parser.parse_args(argv)
    if args.path.exists():
        sys.exit(f"{args.path} exists: give a new file name")
    attempts = build_demo(f"sqlite:///{args.path}", seed=args.seed, days=args.days)
    print(f"{args.path}: {attempts} sign-ups over {args.days} days (seed {args.seed})")


if __name__ == "__main__":
    main()

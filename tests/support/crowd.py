"""A busy channel for the output fairness checks: a livechat database with a long history,
and the commands a crowd sends at once.

Shared by tests/irc/test_output_fairness.py (pass/fail) and bench/fairness.py (figures), so both
measure the same thing. The rows are written by the plugin's own workflow code, as the bot
writes them, each step in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from ircbot import outbox
from ircbot.clock import utcnow
from ircbot.storage import make_engine, make_session_factory, migrate, transaction

__all__ = ["CROWD_COMMANDS", "HISTORY_NICK", "seed_livechat"]

HISTORY_NICK = "trlong"
#: What each member of the crowd sends at once; ngircd's penalty lets three through at
#: first, then about one a second, and the bot's per-person limit (5, then 0.5/s) the rest.
CROWD_COMMANDS = [
    "!help",
    "!ping one",
    "!help ping",
    "!trainees",
    f"!history {HISTORY_NICK}",
    "!ping two",
    "!help status",
    "!status",
]


def seed_livechat(url: str, *, rounds: int = 20, trainees: int = 45) -> None:
    """``trlong``, a trainee with ``2 * rounds`` vouch events (``!history`` sends its full
    31 lines), and ``trainees`` others (``!trainees`` then goes in private, over pages).

    People are keyed as ngircd shows a client named after its nick: ``~nick@127.0.0.1``.
    The trainee's notes about those vouches are marked delivered, as if read long ago: a
    backlog of durable messages would otherwise go out first, ahead of every reply, as soon
    as the trainee is seen (that is what the outbox's priority is for), and the figures
    would be about that instead.
    """
    from ircbot_plugins.livechat import plugin as livechat
    from ircbot_plugins.livechat import team, workflow
    from ircbot_plugins.livechat.config import LivechatConfig
    from ircbot_plugins.livechat.roles import Role
    from ircbot_plugins.livechat.store import OutboxNotifier, Subject, Unit, touch

    engine = make_engine(url)
    try:
        migrate(engine, [livechat.migrations] if livechat.migrations else [])
        factory = make_session_factory(engine)
        rules = LivechatConfig()
        now = utcnow() - dt.timedelta(hours=1)

        @contextmanager
        def unit() -> Iterator[Unit]:
            with transaction(factory) as session:
                yield Unit(session, now, rules, OutboxNotifier(session, now))

        def person(u: Unit, nick: str):
            return touch(u, f"~{nick}@127.0.0.1", nick, nick)

        with unit() as u:
            team.set_role(u, person(u, "helper1"), Role.HELPER, None, manual=True)
            workflow.register(u, person(u, HISTORY_NICK))
            for n in range(trainees):
                workflow.register(u, person(u, f"trainee{n}"))
        for _ in range(rounds):
            for step in (workflow.vouch, workflow.unvouch):
                with unit() as u:
                    subject = Subject(HISTORY_NICK, person(u, HISTORY_NICK))
                    step(u, person(u, "helper1"), subject)
        with transaction(factory) as session:
            for key in outbox.pending_recipients(session):
                for message in outbox.pending_for(session, key):
                    outbox.mark_delivered(session, message.id, now)
    finally:
        engine.dispose()

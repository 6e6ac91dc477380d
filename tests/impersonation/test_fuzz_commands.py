"""Every command's arguments and the line handler, fed arbitrary text (Hypothesis).

The bot is real (the livechat plugin, its migrations, a SQLite file, the dispatcher and the
transport's splitting); only the socket is missing: what the bot would write is read off its
output queue, so nothing is sent anywhere. Hostmask mode, and everyone named is tracked as
present, so that a command runs at once instead of waiting for a WHOIS no server answers.

For any line from any of a coordinator, a helper, a trainee or a stranger:

- no exception escapes (the line handler) and no handler fails (the dispatcher would answer
  "failed; the error is logged");
- every line the bot would send fits in 512 bytes with the prefix the server puts in front,
  and holds no CR, LF or NUL;
- a refused line (a usage error, a role refusal, an unknown command) changes nothing in the
  database, not even the speaker's last nick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ircbot.bot import Bot
from ircbot.clock import ManualClock
from ircbot.config import load_config
from ircbot.loading import installed
from ircbot.outbox import OutboxMessage
from ircbot.storage import transaction
from tests.support.botproc import dump_toml

BOT_PREFIX = ":fuzzbot!~livechat@127.0.0.1 "  # what the server puts before our lines
CHAN = "#livechat"
PEOPLE = {  # nick -> ident; the masks below make fcoord a coordinator, fhelp a helper
    "fcoord": "fcoord",
    "fhelp": "fhelp",
    "ftrainee": "ftrainee",
    "fstranger": "fstranger",
}
REFUSED = re.compile(
    r"Usage: |is for \w+s only|I don't know [!.]|is not a nick|sending commands too fast"
)


class Captured:
    """The bot's output queue, read instead of drained to a socket."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def put(self, line: str, on_sent: Any = None, lane: Any = None) -> None:
        self.lines.append(line)

    def put_reply(self, requester: Any, line: str, on_sent: Any = None) -> bool:
        self.lines.append(line)
        return True


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bot, Captured]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    path = folder / "ircbot.toml"
    path.write_text(
        dump_toml(
            {
                "irc": {"nick": "fuzzbot", "channels": [CHAN]},
                "bot": {
                    "identity": "hostmask",
                    "plugins": ["livechat"],
                    "user_burst": 1_000_000,
                    "user_rate": 1_000_000.0,
                },
                "database": {"url": f"sqlite:///{folder / 'fuzz.db'}"},
                "livechat": {
                    "coordinators": ["*!~fcoord@127.0.0.1"],
                    "helpers": ["*!~fhelp@127.0.0.1"],
                },
            }
        )
    )
    found = installed()
    config = load_config(path, found.schemas(), environ={})
    bot = Bot(config, found.enabled(config.bot.plugins), clock=ManualClock())
    bot.prepare()
    network = bot.network
    network.set_casemapping("ascii")
    network.own_nick = "fuzzbot"
    network.on_join("fuzzbot", "~livechat", "127.0.0.1", CHAN, None)
    for nick, ident in PEOPLE.items():
        network.on_join(nick, f"~{ident}", "127.0.0.1", CHAN, None)
    captured = Captured()
    bot.transport.queue = captured  # type: ignore[assignment]
    try:
        yield bot, captured
    finally:
        bot.engine.dispose()


def snapshot(bot: Bot) -> tuple[Any, ...]:
    """Everything a command could write: row counts, and who goes by which nick."""
    from ircbot_plugins.livechat.models import Attempt, Event, Person, Vouch

    with transaction(bot.session_factory) as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Person, Attempt, Vouch, Event, OutboxMessage)
        )
        people = tuple(session.execute(select(Person.identity, Person.last_nick, Person.role)))
        states = tuple(session.execute(select(Attempt.id, Attempt.state)))
    return counts, people, states


# Text a person can send: anything but what ends an IRC line, with the awkward cases made
# likely (Unicode digits, mIRC formatting, CTCP, nick-like words, masks, very long words).
awkward = st.sampled_from(
    ["²", "٣", "\uff13", "0", "-1", "99999999999999999999", "\x02", "\x0304,05", "\x01", "\x0f",
     "account:", "*!*@*", "~ftrainee@127.0.0.1", "ftrainee", "fhelp", "FCOORD", "add",
     "remove", " ", "é✓", "x" * 400]
)  # fmt: skip
words = st.one_of(
    awkward,
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
        max_size=40,
    ),
)
argument_text = st.lists(words, max_size=6).map(" ".join)
COMMANDS = ["newhelper", "withdraw", "status", "trainees", "history", "vouch", "unvouch",
            "ready", "promote", "hold", "unhold", "reject", "helper", "coordinator", "help",
            "ping"]  # fmt: skip


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    speaker=st.sampled_from(sorted(PEOPLE)),
    name=st.one_of(st.sampled_from(COMMANDS), st.text(max_size=12)),
    args=argument_text,
    in_channel=st.booleans(),
    prefix_noise=st.sampled_from(["", "\x02", "\x0303"]),
)
def test_any_line_is_answered_briefly_and_a_refusal_writes_nothing(
    bot: tuple[Bot, Captured],
    speaker: str,
    name: str,
    args: str,
    in_channel: bool,
    prefix_noise: str,
) -> None:
    the_bot, captured = bot
    captured.lines.clear()
    before = snapshot(the_bot)
    text = f"{prefix_noise}!{name} {args}"
    the_bot.dispatcher.on_message(
        speaker, f"~{PEOPLE[speaker]}", "127.0.0.1", CHAN if in_channel else None, text, {}
    )
    for line in captured.lines:
        assert not set(line) & {"\r", "\n", "\x00"}, line
        assert len((BOT_PREFIX + line).encode("utf-8")) + 2 <= 512, line
        assert "the error is logged" not in line, line
    replies = [line for line in captured.lines if line.startswith(("PRIVMSG", "NOTICE"))]
    if any(REFUSED.search(line) for line in replies):
        assert snapshot(the_bot) == before, (text, replies)


def test_the_harness_runs_commands_for_real(bot: tuple[Bot, Captured]) -> None:
    """The fuzzing above is only worth something if lines reach the handlers: they do."""
    the_bot, captured = bot
    captured.lines.clear()
    before = snapshot(the_bot)
    the_bot.dispatcher.on_message("fstranger", "~fstranger", "127.0.0.1", CHAN, "!newhelper", {})
    the_bot.dispatcher.on_message("fhelp", "~fhelp", "127.0.0.1", CHAN, "!vouch fstranger ok", {})
    text = "\n".join(captured.lines)
    assert "fstranger: welcome" in text or "fstranger: you are" in text, text
    assert "fhelp: vouched for fstranger" in text or "already vouched" in text, text
    assert snapshot(the_bot) != before

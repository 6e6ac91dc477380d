"""The ``seen`` plugin event on a real ngircd: who holds a nick, as soon as the bot knows.

A plugin hears of everyone it shares a channel with: those already there when it joins (its
WHO), those who join later, and the new nick of whoever changes it; never the bot itself.
Each handler runs in a context of its own with the plugin's ``memory``, the same dict for
the whole run; one that fails is logged and the others still hear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from ircbot.context import JobContext
from ircbot.identity import Identity
from ircbot.plugin import Plugin
from tests.support.botthread import BotThread, bot_config

pytestmark = pytest.mark.timeout(30)

BOT = "seenbot"
CHAN = "#seenw"


def until(read: Callable[[], Any], expected: Any, timeout: float = 5) -> None:
    """Wait (bounded) until ``read()`` returns ``expected``."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected:
        assert time.monotonic() < deadline, value
        time.sleep(0.02)


def test_plugins_hear_who_is_there_who_joins_and_new_nicks(
    ngircd: Any, irc_client: Callable[..., Any], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[tuple[str, str, int]] = []
    watcher, failing = Plugin("watcher"), Plugin("failing")

    @watcher.on("seen")
    def note(ctx: JobContext, identity: Identity, nick: str) -> None:
        ctx.memory["calls"] = ctx.memory.get("calls", 0) + 1
        heard.append((nick, identity.key, ctx.memory["calls"]))

    @failing.on("seen")
    def boom(ctx: JobContext, identity: Identity, nick: str) -> None:
        raise RuntimeError("a broken plugin")

    irc_client("sw_early", channels=(CHAN,), user="swearly")
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{tmp_path / 'bot.db'}",
        irc={"nick": BOT, "channels": [CHAN]},
    )
    caplog.set_level(logging.ERROR, logger="ircbot.bot")
    with BotThread(config, extra_plugins=[failing, watcher]) as bot:

        def calls() -> list[tuple[str, str, int]]:
            return bot.call(lambda: list(heard))

        until(calls, [("sw_early", "~swearly@127.0.0.1", 1)])  # there before the bot: its WHO
        late = irc_client("sw_late", channels=(CHAN,), user="swlate")
        late.nick("sw_late2")
        late.part(CHAN)  # a PART tells nothing new
        irc_client("sw_last", channels=(CHAN,), user="swlast")
        until(
            calls,
            [
                ("sw_early", "~swearly@127.0.0.1", 1),
                ("sw_late", "~swlate@127.0.0.1", 2),
                ("sw_late2", "~swlate@127.0.0.1", 3),
                ("sw_last", "~swlast@127.0.0.1", 4),
            ],
        )
    failures = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" failed")]
    assert failures == [
        "seen sw_early failed",
        "seen sw_late failed",
        "seen sw_late2 failed",
        "seen sw_last failed",
    ]

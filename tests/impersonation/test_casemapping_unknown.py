"""A server announcing a CASEMAPPING the bot does not know: nicks it keeps apart stay apart.

Ergo announces ``CASEMAPPING=rfc8265`` (PRECIS), which the bot does not implement. Falling
back to rfc1459, as it once did, made ``Alice[x]`` and ``Alice{x}`` one nick to the bot while
the server keeps them as two people: whoever joined last took the other's place in the bot's
view, and ``!status Alice[x]`` answered about ``Alice{x}``. The fallback is ``ascii``, which
folds only ``A-Z`` and so never merges nicks a server keeps apart; it is logged once.

A scripted server plays the network (ngircd only announces ascii), in hostmask mode with the
livechat plugin on a real SQLite file. Its first ISUPPORT line carries no CASEMAPPING at all,
as servers that split their tokens over several 005 lines do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ircbot.casemapping import CaseMapping
from tests.support.botthread import BotThread, bot_config
from tests.support.fakeserver import ScriptedServer

pytestmark = pytest.mark.timeout(60)


def test_an_unknown_name_folds_as_ascii_and_known_ones_as_announced() -> None:
    assert CaseMapping.from_name("rfc8265").fold("Alice[X]") == "alice[x]"
    assert CaseMapping.from_name("RFC8265").name == "ascii"
    assert CaseMapping.from_name("rfc1459").fold("Alice[X]") == "alice{x}"
    assert CaseMapping.from_name("strict-rfc1459").fold("A~[") == "a~{"
    assert CaseMapping.from_name(None).name == "rfc1459"  # not announced: RFC 1459's own rule
    assert not CaseMapping.known("rfc8265") and CaseMapping.known("ASCII")


@pytest.fixture
def server(
    scripted_server: ScriptedServer, tmp_path, caplog: pytest.LogCaptureFixture
) -> Iterator[ScriptedServer]:
    caplog.set_level(logging.INFO, logger="ircbot")
    config = bot_config(
        scripted_server.host,
        scripted_server.port,
        f"sqlite:///{tmp_path}/bot.db",
        bot={"identity": "hostmask", "plugins": ["livechat"], "user_burst": 20},
    )
    bot = BotThread(config).start(wait_joined=False)
    try:
        scripted_server.register_bot()
        yield scripted_server
    finally:
        scripted_server.close_client()
        bot.stop()


def say(server: ScriptedServer, source: str, text: str) -> None:
    server.send(f":{source} PRIVMSG #livechat :{text}")


def reply(server: ScriptedServer, to: str, text: str) -> str:
    return server.expect_line(rf"^PRIVMSG #livechat :{to}: {text}", skip=True)


def test_rfc8265_keeps_alice_brackets_and_alice_braces_apart(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.send(":irc.test 005 lcbot CHANTYPES=# NICKLEN=30 :are supported by this server")
    for _ in range(2):  # a server repeats its tokens when asked (VERSION): logged once all the same
        server.send(":irc.test 005 lcbot CASEMAPPING=rfc8265 :are supported by this server")
    square, curly = "Alice[x]!~ax@a.example", "Alice{x}!~bx@b.example"
    server.send(f":{square} JOIN #livechat")
    server.send(f":{curly} JOIN #livechat")
    say(server, square, "!newhelper")
    reply(server, r"Alice\[x\]", "welcome!")
    say(server, "zed!~zed@z.example", "!status Alice[x]")
    reply(server, "zed", r"Alice\[x\] is in training")
    say(server, "zed!~zed@z.example", "!status Alice{x}")
    reply(server, "zed", r"Alice\{x\} is not a trainee")
    # The one that left is gone; the other is still known under its own nick.
    server.send(f":{curly} PART #livechat")
    say(server, "zed!~zed@z.example", "!status Alice[x]")
    reply(server, "zed", r"Alice\[x\] is in training")
    unknown = [r for r in caplog.records if "rfc8265" in r.getMessage()]
    assert len(unknown) == 1, [r.getMessage() for r in caplog.records]
    assert unknown[0].levelno == logging.WARNING and "ascii" in unknown[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no handler raised"

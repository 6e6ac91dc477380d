"""The whole story with ``[bot] prefix = "."``: every text the bot sends spells ``.command``.

A bot whose prefix is ``.`` that tells people "Say !promote X" sends them to a command it
does not answer. On a real ngircd in hostmask mode, the bot in this process: register, two
vouches, the ready ping, hold (and the refused promotion), unhold, the SLA reminder, a new
coordinator's catch-up, promotion, the refusals that suggest a command, a withdrawal, the
trainee list in pages, an idle close and ``.help``. Each answer that names a command is
checked word for word with ``.``; and every PRIVMSG or NOTICE the bot wrote on its socket
(read from jaraco ``irc``'s own DEBUG log of what it sends) is checked for any ``!name``
of a command the bot has.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from ircbot_plugins.livechat.config import DEFAULT_WELCOME

from tests.support.botthread import BotThread, ShiftClock, bot_config
from tests.support.client import IRCTestClient
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(90)

BOT, CHAN = "pfbot", "#prefix"
IDENTS = {
    "pf_t": "pft",
    "pf_w": "pfw",
    "pf_i": "pfi",
    "pf_h1": "pfh1",
    "pf_h2": "pfh2",
    "pf_c": "pfc",
    "pf_c2": "pfc2",
    "pf_n": "pfn",
}
LIVECHAT = {
    "threshold": 2,
    "helpers": ["*!~pfh1@127.0.0.1", "*!~pfh2@127.0.0.1"],
    "coordinators": ["*!~pfc@127.0.0.1", "*!~pfc2@127.0.0.1"],
    "channel_list_max": 0,
    "page_size": 1,
}
HOLD = "wants to shadow one more chat"


class Sent(logging.Handler):
    """Every PRIVMSG and NOTICE the bot wrote to its socket (jaraco logs each at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("TO SERVER: ") and re.match(r"(PRIVMSG|NOTICE) ", text[11:]):
            self.lines.append(text[11:])


@pytest.fixture
def sent() -> Iterator[Sent]:
    handler, logger = Sent(), logging.getLogger("irc.client")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Room:
    def __init__(self, bot: BotThread, server: NgircdServer) -> None:
        self.bot = bot
        self.clients = {
            nick: IRCTestClient.connect(server.host, server.port, nick, user=ident)
            for nick, ident in IDENTS.items()
        }
        for client in self.clients.values():
            client.join(CHAN)

    def said(self, nick: str, text: str) -> str:
        """``nick`` says ``text`` in the channel; the bot's answer there, minus ``nick: ``."""
        client = self.clients[nick]
        client.say(CHAN, text)
        reply = client.expect(rf"^{re.escape(nick)}: ", source=BOT, target=CHAN)
        return reply.text[len(nick) + 2 :]

    def asked(self, nick: str, text: str) -> str:
        """``nick`` says ``text`` to the bot privately; its private answer."""
        self.clients[nick].say(BOT, text)
        return self.private(nick)

    def private(self, nick: str, pattern: str | None = None) -> str:
        return self.clients[nick].expect(pattern, source=BOT, target=nick).text

    def announced(self, nick: str, text: str) -> None:
        self.clients[nick].expect(rf"^{re.escape(text)}$", source=BOT, target=CHAN)

    def timers_after(self, **delta: float) -> None:
        self.bot.clock.advance(**delta)
        self.bot.run_jobs()


@pytest.fixture
def room(ngircd: NgircdServer, tmp_path: Path, sent: Sent) -> Iterator[Room]:
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{tmp_path / 'bot.db'}",
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"plugins": ["livechat"], "prefix": ".", "user_burst": 1000, "user_rate": 100.0},
        livechat=LIVECHAT,
    )
    with BotThread(config, clock=ShiftClock()) as bot:
        room = Room(bot, ngircd)
        try:
            yield room
        finally:
            for client in room.clients.values():
                client.quit(timeout=1)


def test_the_whole_story_spells_the_configured_prefix(room: Room, sent: Sent) -> None:
    welcome = (
        f"welcome! You are now a trainee; 2 helpers' vouches make you ready. {DEFAULT_WELCOME}"
    )
    # Refusals that suggest a command.
    assert room.said("pf_h1", ".vouch pf_t") == (
        "pf_t is not a trainee (ask them to say .newhelper)"
    )
    assert room.said("pf_n", ".status") == "you are not a trainee (say .newhelper to start)"
    # Register, two vouches: ready, and the coordinators are pinged.
    assert room.said("pf_t", ".newhelper") == welcome
    room.said("pf_h1", ".vouch pf_t")
    assert room.said("pf_h2", ".vouch pf_t") == (
        "vouched for pf_t: 2/2, ready; coordinators are pinged"
    )
    ping = (
        "pf_t (~pft@127.0.0.1) is ready for promotion (2 vouches: pf_h1, pf_h2). Say .promote pf_t"
    )
    for coordinator in ("pf_c", "pf_c2"):
        assert room.private(coordinator, "ready for promotion") == ping
    room.announced("pf_c", "pf_c, pf_c2: pf_t is ready for promotion (2/2).")
    # Hold: promotion is refused with what to say; unhold makes them ready again.
    assert room.said("pf_c", f".hold pf_t {HOLD}") == f"pf_t is on hold: {HOLD}"
    assert room.said("pf_c2", ".promote pf_t") == f"pf_t is on hold ({HOLD}): .unhold first"
    assert room.said("pf_c", ".unhold pf_t") == (
        "pf_t is off hold and ready; coordinators are pinged"
    )
    room.announced("pf_c", "pf_c, pf_c2: pf_t is ready for promotion.")
    assert room.private("pf_c", "ready for promotion") == ping
    # Past the promise: the reminder.
    room.timers_after(hours=24)
    assert room.private("pf_c", "^Reminder") == (
        "Reminder: pf_t (~pft@127.0.0.1) has been ready for 24h, past the 24h promise. "
        "Say .promote pf_t (or .hold pf_t <why>)"
    )
    # A new coordinator is caught up.
    assert room.said("pf_c", ".coordinator add pf_n") == "pf_n is now a coordinator"
    assert room.private("pf_n") == "1 trainee awaits promotion: pf_t — say .ready"
    assert room.said("pf_c", ".helper remove pf_n") == (
        "pf_n is a coordinator: .coordinator remove pf_n first"
    )
    assert room.said("pf_n", ".promote pf_t") == "pf_t is now a helper; they have been told"
    # A withdrawal, the list in pages, and an idle trainee closed.
    assert room.said("pf_w", ".newhelper") == welcome
    assert room.said("pf_w", ".withdraw") == (
        "you have left training (withdrawn); say .newhelper to come back any time"
    )
    assert room.said("pf_w", ".status") == (
        "you are not in training: withdrawn 0m ago (withdrew); .newhelper starts afresh"
    )
    room.said("pf_w", ".newhelper")
    room.said("pf_i", ".newhelper")
    assert (
        room.said("pf_n", ".trainees")
        == "0 ready, 2 in training, 0 on hold; the list is in private"
    )
    assert room.private("pf_n", "^pf_") == "pf_w (training 0/2)"
    assert room.private("pf_n", "^page") == "page 1 of 2; say .trainees 2 for more"
    room.timers_after(days=14)
    room.private("pf_i", "^No helper has vouched")
    room.timers_after(days=14)
    assert room.private("pf_i", "^Your training closed") == (
        "Your training closed after a long time without vouches: say .newhelper to come back."
    )
    # .help names commands with the prefix, the help text of each too.
    assert room.asked("pf_n", ".help").startswith("Commands: .ping .help .newhelper .withdraw")
    assert room.asked("pf_n", ".help withdraw") == (
        ".withdraw [reason...]: Leave training (.newhelper to return)."
    )
    assert room.asked("pf_n", ".help hold") == (
        ".hold <nick> <reason...>: Pause a trainee: no pings, no promotion, until .unhold. "
        "(coordinators)"
    )
    assert room.asked("pf_n", ".help reject") == (
        ".reject <nick> <reason...>: End a trainee's training, with the reason kept (they may "
        ".newhelper again). (coordinators)"
    )
    # "!help" is not this bot's command: the next answer is the one to the marker after it.
    room.clients["pf_n"].say(BOT, "!help")
    assert room.asked("pf_n", ".ping after-bang") == "pong after-bang"

    # Nothing the bot wrote spells a command with "!".
    names = sorted(room.bot.bot.dispatcher.commands, key=len, reverse=True)
    bang = re.compile(r"(?<![\w~])!(?:" + "|".join(map(re.escape, names)) + r")\b")
    assert len(sent.lines) > 40, sent.lines
    assert [line for line in sent.lines if bang.search(line)] == []
    assert sum(".promote pf_t" in line for line in sent.lines) >= 4

"""Acting as someone else, tried on a real ngircd with the bot in hostmask mode.

Each test is one attack, played by real client connections: the attacker is another
connection (another ident, so another ``user@host``) that takes a nick, reconnects under
new idents, or slips control codes into what the bot repeats. ngircd has no services, so
this is the mode where the bot has least to go on; account-mode attacks are in
``test_account_attacks.py`` and the WHOIS races in ``test_whois_binding.py``.

The team: two helpers and a coordinator named by ``*!~ident@127.0.0.1`` masks, and a helper
named by nick and host only (``ibob_h!*@127.0.0.1``), whom any ident on that nick *is*.
Every test uses nicks of its own, so the tests are independent of order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ircbot_plugins.livechat.models import Attempt, Person, Vouch
from ircbot_plugins.livechat.roles import Role
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(60)

BOT = "imbot"
CHAN = "#impostors"
LIVECHAT = {
    "threshold": 2,
    "helpers": ["*!~ihelp1@127.0.0.1", "*!~ihelp2@127.0.0.1", "ibob_h!*@127.0.0.1"],
    "coordinators": ["*!~icoord@127.0.0.1", "*!~idouble@127.0.0.*"],
}
# ``~idouble`` also matches this helper entry: two entries, so no role at all.
LIVECHAT["helpers"].append("*!~idouble@127.0.0.1")


class Room:
    def __init__(self, bot: BotThread, server: NgircdServer) -> None:
        self.bot, self.server = bot, server
        self.clients: list[IRCTestClient] = []

    def connect(self, nick: str, ident: str) -> IRCTestClient:
        client = IRCTestClient.connect(self.server.host, self.server.port, nick, user=ident)
        self.clients.append(client)
        client.join(CHAN)
        return client

    def query(self, fn: Callable[[Session], Any]) -> Any:
        return self.bot.query(fn)


@pytest.fixture(scope="module")
def room(ngircd: NgircdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    database = tmp_path_factory.mktemp("impostors") / "bot.db"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{database}",
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"plugins": ["livechat"], "user_burst": 1000, "user_rate": 100.0},
        livechat=LIVECHAT,
    )
    with BotThread(config) as bot:
        room = Room(bot, ngircd)
        try:
            room.helper1 = room.connect("ihelp1", "ihelp1")
            room.helper2 = room.connect("ihelp2", "ihelp2")
            room.coord = room.connect("icoord", "icoord")
            yield room
        finally:
            for client in room.clients:
                client.quit(timeout=1)


def said(client: IRCTestClient, text: str) -> str:
    """``client`` says ``text`` in the channel; the bot's answer to them there."""
    before = {id(m) for m in client.messages}
    client.say(CHAN, text)
    prefix = f"{client.current_nick}: "
    while True:
        reply = client.expect(rf"^{re.escape(prefix)}", source=BOT, target=CHAN)
        if id(reply) not in before:
            return reply.text[len(prefix) :]


def leave(room: Room, client: IRCTestClient) -> None:
    """``client`` quits, and the bot has seen it (its next answer comes after the QUIT)."""
    marker = f"{client.current_nick} left"
    client.quit(timeout=2)
    room.coord.say(CHAN, f"!ping {marker}")
    room.coord.expect(rf"^icoord: pong {marker}$", source=BOT, target=CHAN)


def vouches_for(room: Room, identity: str) -> int:
    def read(session: Session) -> int:
        stmt = (
            select(func.count(Vouch.id))
            .join(Attempt, Attempt.id == Vouch.attempt_id)
            .join(Person, Person.id == Attempt.person_id)
            .where(Person.identity == identity, Vouch.retracted_at.is_(None))
        )
        return session.scalar(stmt) or 0

    return room.query(read)


def role_of(room: Room, identity: str) -> Role | None:
    def read(session: Session) -> Role | None:
        person = session.scalar(select(Person).where(Person.identity == identity))
        return person.role if person else None

    return room.query(read)


# -- 1. a stranger takes an offline person's nick -------------------------------------------------
def test_a_stranger_saying_a_command_on_an_offline_nick_takes_no_claim(room: Room) -> None:
    bob = room.connect("ibobby", "ibobby")
    assert said(bob, "!newhelper").startswith("welcome!")
    leave(room, bob)
    eve = room.connect("ibobby", "ieve1")  # Bob's nick, Eve's connection
    assert said(eve, "!status").startswith("you are not a trainee")  # Eve, not Bob
    leave(room, eve)
    # The nick still names Bob, the only one with a stake in it: the vouch is his.
    assert said(room.helper1, "!vouch ibobby worked well") == (
        "vouched for ibobby (offline): 1/2, training"
    )
    assert vouches_for(room, "~ibobby@127.0.0.1") == 1
    assert vouches_for(room, "~ieve1@127.0.0.1") == 0


def test_a_stranger_with_an_attempt_on_the_nick_makes_it_name_nobody(room: Room) -> None:
    bob = room.connect("icarl", "icarl")
    assert said(bob, "!newhelper").startswith("welcome!")
    leave(room, bob)
    eve = room.connect("icarl", "ieve2")
    assert said(eve, "!newhelper").startswith("welcome!")  # her own attempt, her own identity
    leave(room, eve)
    answer = said(room.helper1, "!vouch icarl")
    assert "more than one person has used the nick icarl" in answer
    assert "account:NAME" in answer
    assert vouches_for(room, "~icarl@127.0.0.1") == 0
    assert vouches_for(room, "~ieve2@127.0.0.1") == 0
    # Named in full, the vouch reaches the right person.
    assert said(room.helper1, "!vouch ~icarl@127.0.0.1") == "vouched for icarl: 1/2, training"
    assert vouches_for(room, "~icarl@127.0.0.1") == 1
    assert vouches_for(room, "~ieve2@127.0.0.1") == 0


def test_a_role_never_goes_to_an_offline_nick(room: Room) -> None:
    dan = room.connect("idan", "idan")
    said(dan, "!status")  # known to the bot under this nick
    leave(room, dan)
    eve = room.connect("idan", "ieve3")
    assert said(eve, "!status").startswith("you are not a trainee")
    leave(room, eve)
    for command in ("!helper add idan", "!coordinator add idan"):
        answer = said(room.coord, command)
        assert "idan is not online" in answer and "account:NAME" in answer
    assert role_of(room, "~idan@127.0.0.1") == Role.NONE
    assert role_of(room, "~ieve3@127.0.0.1") == Role.NONE
    # By identity, offline: the named person gets the role, and nobody else.
    assert said(room.coord, "!helper add ~idan@127.0.0.1") == "idan is now a helper"
    assert role_of(room, "~idan@127.0.0.1") == Role.HELPER
    assert role_of(room, "~ieve3@127.0.0.1") == Role.NONE


def test_promote_accepts_the_identity_the_ping_names(room: Room) -> None:
    trainee = room.connect("ifay", "ifay")
    said(trainee, "!newhelper")
    said(room.helper1, "!vouch ifay")
    assert said(room.helper2, "!vouch ifay").startswith("vouched for ifay: 2/2, ready")
    room.coord.expect(r"^icoord: ifay is ready for promotion", source=BOT, target=CHAN)
    leave(room, trainee)
    assert said(room.coord, "!promote ~ifay@127.0.0.1").startswith("ifay is now a helper")
    assert role_of(room, "~ifay@127.0.0.1") == Role.HELPER


# -- 4. one helper is one person, whatever the ident --------------------------------------------
def test_a_masked_helper_reconnecting_under_new_idents_is_still_one_helper(room: Room) -> None:
    trainee = room.connect("igus", "igus")
    said(trainee, "!newhelper")
    first = room.connect("ibob_h", "x1")
    assert said(first, "!vouch igus") == "vouched for igus: 1/2, training"
    first.quit(timeout=2)
    second = room.connect("ibob_h", "x2")  # the same entry, another ident
    assert said(second, "!vouch igus") == "already vouched for igus (1/2)"
    assert vouches_for(room, "~igus@127.0.0.1") == 1
    second.quit(timeout=2)


def test_a_connection_matching_two_masks_is_refused_a_role_and_told_why(room: Room) -> None:
    trainee = room.connect("ihal", "ihal")
    said(trainee, "!newhelper")
    double = room.connect("idouble", "idouble")
    answer = said(double, "!vouch ihal")
    assert answer.startswith("!vouch is for helpers only.")
    assert "more than one configured mask" in answer
    assert "*!~idouble@127.0.0.*" in answer and "*!~idouble@127.0.0.1" in answer
    assert vouches_for(room, "~ihal@127.0.0.1") == 0


# -- what the bot already resisted -------------------------------------------------------------
def test_no_self_vouch_and_no_vouch_from_a_trainee(room: Room) -> None:
    ida = room.connect("iida", "iida")
    said(ida, "!newhelper")
    assert said(ida, "!vouch iida") == "!vouch is for helpers only."
    other = room.connect("ijon", "ijon")
    said(other, "!newhelper")
    assert said(other, "!vouch iida") == "!vouch is for helpers only."
    assert vouches_for(room, "~iida@127.0.0.1") == 0


def test_a_repeat_vouch_counts_once(room: Room) -> None:
    kim = room.connect("ikim", "ikim")
    said(kim, "!newhelper")
    assert said(room.helper1, "!vouch ikim") == "vouched for ikim: 1/2, training"
    assert said(room.helper1, "!vouch ikim again") == "already vouched for ikim (1/2); note updated"
    assert vouches_for(room, "~ikim@127.0.0.1") == 1


def test_the_old_nick_taken_after_a_nick_change_names_the_new_holder(room: Room) -> None:
    lea = room.connect("ilea", "ilea")
    said(lea, "!newhelper")
    lea.nick("ilea_away")
    eve = room.connect("ilea", "ieve4")  # online now under Lea's old nick
    assert said(room.helper1, "!vouch ilea").startswith("ilea is not a trainee")
    assert said(room.helper1, "!vouch ilea_away") == "vouched for ilea_away: 1/2, training"
    assert vouches_for(room, "~ilea@127.0.0.1") == 1
    assert vouches_for(room, "~ieve4@127.0.0.1") == 0
    eve.quit(timeout=1)


# -- output the bot repeats -----------------------------------------------------------------------
def test_control_codes_sent_to_the_bot_never_reach_its_wire(room: Room) -> None:
    mia = room.connect("imia", "imia")
    # (A NUL would end ngircd's whole read buffer, not reach the bot: the scripted-server
    # tests of hostile input in tests/irc/test_core_irc.py send the bot one.)
    mia.send_raw(b"PRIVMSG " + CHAN.encode() + b" :!ping c\x01d\x02e")
    answer = mia.expect(r"^imia: pong c", source=BOT, target=CHAN).raw
    assert not set(answer) & {"\r", "\n", "\x00"}, answer
    assert said(room.coord, "!ping still here") == "pong still here"  # the bot did not quit


def test_a_reply_never_starts_a_ctcp(room: Room) -> None:
    room.helper1.say(BOT, "!ping \x01VERSION\x01")
    reply = room.helper1.expect(None, source=BOT, target="ihelp1")
    assert not reply.text.startswith("\x01"), reply.raw


def test_long_multibyte_replies_split_within_512_bytes_on_character_boundaries(
    room: Room,
) -> None:
    # 455 bytes of two- and three-byte characters: the line relayed to the bot fits in 512
    # bytes, the answer with the bot's longer prefix and "ihelp2: " in front does not.
    text = "é✓" * 91
    room.helper2.say(CHAN, f"!ping {text}")
    first = room.helper2.expect(r"^ihelp2: pong", source=BOT, target=CHAN)
    pieces, lines = [first.text.removeprefix("ihelp2: pong").strip()], [first]
    while len("".join(pieces)) < len(text):  # the rest follows, not addressed again
        lines.append(room.helper2.expect(r"^[é✓]", source=BOT, target=CHAN))
        pieces.append(lines[-1].text)
    assert len(lines) >= 2 and "".join(pieces) == text
    assert all(len(line.raw.encode("utf-8")) + 2 <= 512 for line in lines)


def test_a_line_the_server_cut_mid_character_is_still_read_as_utf8(room: Room) -> None:
    # Relayed with the sender's prefix, this private line passes 512 bytes: ngircd cuts
    # it, mid-character. The bot must not read the whole line as latin-1 mojibake.
    text = "é✓" * 97
    room.helper2.say(BOT, f"!ping {text}")
    echoed = room.helper2.expect(r"^pong", source=BOT, target="ihelp2").text.removeprefix("pong")
    while not echoed.endswith("[CUT]"):  # ngircd marks the cut; the rest of a split answer
        echoed += room.helper2.expect(None, source=BOT, target="ihelp2").text
    echoed = echoed.removesuffix("[CUT]").strip()
    assert len(echoed) > 150 and text.startswith(echoed), echoed  # no latin-1 mojibake

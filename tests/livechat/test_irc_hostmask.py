"""The trainee story on a real ngircd in hostmask mode, told by real client connections.

The bot runs the livechat plugin with ``[bot] identity = "hostmask"``: a person is the
``user@host`` of their connection, and the team is named by ``nick!user@host`` masks in
``[livechat] helpers``/``coordinators``. ngircd runs without an ident server, so it shows a
client's user name with a ``~`` in front (``USER hmhelp1`` is ``~hmhelp1@127.0.0.1``): the
masks say so, and every client has a user name of its own. An impostor is another
connection, with another user name, on someone's nick.

One bot and one set of connections serve the whole module; the tests run in file order and
tell one story. hm_trainee registers, is vouched for up to the threshold (2) and becomes ready:
the coordinator present (hm_coord1) is pinged at once, privately and by a highlight in the
channel, and the other (hm_coord2), who left before, when they come back. A coordinator is
promoted, and the new helper vouches for hm_tb. Around that: every refusal, a nick change and
an impostor, holds, unvouches, a rejection, a withdrawal, the trainee list in pages, the
history and role changes.

A coordinator named only by a mask is on the team from the moment the bot sees them in the
channel, before they say a word: hm_coord2 only joins, and leaves. The clock the bot reads is
one the test moves (:class:`ShiftClock`), so "since when" and "waiting" show hours rather than
zero minutes. Races, restarts and the timers are in
``test_irc_hostmask_resilience.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ircbot_plugins.livechat.models import Attempt, Event, Person, Vouch
from ircbot_plugins.livechat.roles import Role
from ircbot_plugins.livechat.store import stamp
from sqlalchemy import select
from sqlalchemy.orm import Session

from ircbot.outbox import OutboxMessage
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient, nothing_before_pong, renamed
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(60)

BOT = "hmbot"
CHAN = "#hostmask"
WELCOME = "Read the pinned FAQ, then ask in the channel to shadow a chat."
WELCOMED = f"welcome! You are now a trainee; 2 helpers' vouches make you ready. {WELCOME}"

#: nick -> user name (ident), each its own: the identity is ``~ident@127.0.0.1``.
IDENTS = {
    "hm_trainee": "hmtrain",
    "hm_helper1": "hmhelp1",
    "hm_helper2": "hmhelp2",
    "hm_helper3": "hmhelp3",
    "hm_coord1": "hmcoord1",
    "hm_coord2": "hmcoord2",
    "hm_tb": "hmtb",
    "hm_tc": "hmtc",
    "hm_td": "hmtd",
    "hm_nobody": "hmnobody",
    "hm_imp": "hmimp",
}
LIVECHAT = {
    "threshold": 2,
    # The three spellings a mask may have: nick!user@host, any nick, and user@host alone.
    "helpers": ["*!~hmhelp1@127.0.0.1", "*!~hmhelp2@127.0.0.*", "~hmhelp3@127.0.0.1"],
    "coordinators": ["*!~hmcoord1@127.0.0.*", "hm_coord2!~hmcoord2@127.0.0.1"],
    "welcome": WELCOME,
    "channel_list_max": 2,
    "page_size": 2,
}


class Room:
    """The bot and everyone's connection; ``room.trainee`` is the client of hm_trainee..."""

    def __init__(self, bot: BotThread, server: NgircdServer) -> None:
        self.bot = bot
        self.server = server
        self.clients: dict[str, IRCTestClient] = {}

    def connect(self, nick: str) -> IRCTestClient:
        client = IRCTestClient.connect(self.server.host, self.server.port, nick, user=IDENTS[nick])
        self.clients[nick] = client
        client.join(CHAN)
        return client

    def __getattr__(self, name: str) -> IRCTestClient:
        try:
            return self.clients[f"hm_{name}"]
        except KeyError:
            raise AttributeError(name) from None

    def query(self, fn: Callable[[Session], Any]) -> Any:
        return self.bot.query(fn)


@pytest.fixture(scope="module")
def room(ngircd: NgircdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    database = tmp_path_factory.mktemp("hostmask") / "bot.db"
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
            for nick in IDENTS:
                room.connect(nick)
            yield room
        finally:
            for client in room.clients.values():
                client.quit(timeout=1)


# -- talking to the bot ----------------------------------------------------------------------------
def said(client: IRCTestClient, text: str) -> str:
    """``client`` says ``text`` in the channel; the bot's answer there, minus ``nick: ``."""
    before = {id(m) for m in client.messages}
    client.say(CHAN, text)
    prefix = f"{client.current_nick}: "
    while True:  # skip answers to whoever held this nick before (a rename, an impostor)
        reply = client.expect(rf"^{re.escape(prefix)}", source=BOT, target=CHAN)
        if id(reply) not in before:
            return reply.text[len(prefix) :]


def asked(client: IRCTestClient, text: str, pattern: str | None = None) -> str:
    """``client`` says ``text`` to the bot privately; its private answer (matching ``pattern``:
    a durable message for the same person may come first)."""
    client.say(BOT, text)
    return private(client, pattern)


def private(client: IRCTestClient, pattern: str | None = None, timeout: float = 5) -> str:
    """The next private message from the bot to ``client`` (matching ``pattern``)."""
    return client.expect(pattern, source=BOT, target=client.current_nick, timeout=timeout).text


def announced(client: IRCTestClient, pattern: str) -> str:
    """What the bot said in the channel, as ``client`` saw it."""
    return client.expect(pattern, source=BOT, target=CHAN).text


def nothing_more(client: IRCTestClient, pattern: str) -> None:
    """No private message from the bot matching ``pattern`` is waiting, nor comes before its
    answer to a ``!ping`` sent now."""
    nothing_before_pong(client, BOT, pattern)


def key(nick: str) -> str:
    """The identity of the person whose connection is ``nick``'s: ``~ident@127.0.0.1``."""
    return f"~{IDENTS[nick]}@127.0.0.1"


def ping(nick: str, vouchers: str, account: str = "", past: str = "") -> str:
    """The exact text of a coordinator's ping about ``nick`` (``past``: an earlier hold or
    rejection it quotes)."""
    chat = f"; chat account {account}" if account else ""
    earlier = f" {past}." if past else ""
    return (
        f"{nick} ({key(nick)}) is ready for promotion (2 vouches: {vouchers}{chat})."
        f"{earlier} Say !promote {nick}"
    )


def attempts(room: Room, ident: str) -> list[tuple[str, str | None]]:
    """(state, close reason) of each attempt of the person ``~ident@127.0.0.1``, oldest first."""

    def read(session: Session) -> list[tuple[str, str | None]]:
        stmt = (
            select(Attempt.state, Attempt.close_reason)
            .join(Person, Person.id == Attempt.person_id)
            .where(Person.identity == f"~{ident}@127.0.0.1")
            .order_by(Attempt.id)
        )
        return [tuple(row) for row in session.execute(stmt)]

    return room.query(read)


def events(room: Room, kind: str) -> int:
    return room.query(lambda s: len(s.scalars(select(Event.id).where(Event.kind == kind)).all()))


def trainee_times(room: Room, ident: str) -> dict[str, Any]:
    """The registered, ready and promoted times of the person's latest attempt."""

    def read(session: Session) -> dict[str, Any]:
        stmt = (
            select(Attempt)
            .join(Person, Person.id == Attempt.person_id)
            .where(Person.identity == f"~{ident}@127.0.0.1")
            .order_by(Attempt.id.desc())
        )
        t = session.scalars(stmt).first()
        return {"registered": t.registered_at, "ready": t.ready_at, "promoted": t.promoted_at}

    return room.query(read)


# -- the team, as the bot sees it ------------------------------------------------------------------
HELPER_COMMANDS = "!ping !help !newhelper !withdraw !status !trainees !history !vouch !unvouch"
COORDINATOR_COMMANDS = (
    f"{HELPER_COMMANDS} !ready !promote !hold !unhold !reject !helper !coordinator !email"
)


def test_the_masks_name_the_team_and_the_late_coordinator_leaves(room: Room) -> None:
    def commands_for(client: IRCTestClient) -> str:
        reply = asked(client, "!help")
        assert reply.endswith(". Say !help <command> for details."), reply
        return reply.removeprefix("Commands: ").removesuffix(". Say !help <command> for details.")

    assert commands_for(room.coord1) == COORDINATOR_COMMANDS
    assert commands_for(room.helper3) == HELPER_COMMANDS  # matched by user@host alone
    assert (
        commands_for(room.nobody) == "!ping !help !newhelper !withdraw !status !trainees !history"
    )
    assert said(room.coord1, "!ready") == "nobody is waiting for promotion"
    # hm_coord2 has only joined (their mask names them already), and goes away for a while.
    room.coord2.quit("back later")
    role = room.query(
        lambda s: s.scalar(select(Person.role).where(Person.last_nick == "hm_coord2"))
    )
    assert role == Role.COORDINATOR


# -- !newhelper ------------------------------------------------------------------------------------
def test_newhelper_welcomes_with_the_configured_text(room: Room) -> None:
    assert said(room.trainee, "!newhelper spark_t1") == WELCOMED
    assert announced(room.helper1, r"^New trainee") == (
        "New trainee: hm_trainee. Helpers, invite them to shadow your chats!"
    )
    # Again: nothing new, the status instead.
    assert said(room.trainee, "!newhelper") == "you are in training for 0m, 0/2 vouches: none yet"
    assert attempts(room, "hmtrain") == [("training", None)]
    assert events(room, "registered") == 1
    assert said(room.helper1, "!newhelper") == "you are already a helper on the team"
    assert said(room.coord1, "!newhelper") == "you are already a coordinator on the team"
    assert attempts(room, "hmhelp1") == [] and attempts(room, "hmcoord1") == []


def test_a_short_trainee_list_is_answered_in_the_channel(room: Room) -> None:
    assert (
        said(room.nobody, "!trainees")
        == "0 ready, 1 in training, 0 on hold: hm_trainee (training 0/2)"
    )


# -- refusals --------------------------------------------------------------------------------------
def test_vouch_refusals_say_why(room: Room) -> None:
    assert said(room.helper1, "!vouch hm_helper1") == "you can't vouch for yourself"
    assert said(room.helper1, "!vouch hm_nobody") == (
        "hm_nobody is not a trainee (ask them to say !newhelper)"
    )
    assert said(room.helper1, "!vouch hm_ghost") == (
        "hm_ghost (offline) is not a trainee (ask them to say !newhelper)"
    )
    # Matching no helper mask: not a helper, whatever they say.
    assert said(room.nobody, "!vouch hm_trainee") == "!vouch is for helpers only."
    assert said(room.trainee, "!vouch hm_trainee") == "!vouch is for helpers only."
    assert said(room.nobody, "!unvouch hm_trainee") == "!unvouch is for helpers only."


def test_only_coordinators_promote_list_or_hold(room: Room) -> None:
    assert said(room.helper1, "!promote hm_trainee") == "!promote is for coordinators only."
    assert said(room.helper1, "!ready") == "!ready is for coordinators only."
    assert said(room.helper1, "!hold hm_trainee too quiet") == "!hold is for coordinators only."
    assert said(room.trainee, "!unhold hm_trainee") == "!unhold is for coordinators only."
    assert said(room.nobody, "!reject hm_trainee no") == "!reject is for coordinators only."
    assert said(room.helper2, "!helper add hm_nobody") == "!helper is for coordinators only."


def test_an_impostor_on_a_helpers_or_coordinators_nick_gets_nothing(room: Room) -> None:
    imp = room.imp
    with renamed(room.helper1, "hm_helper1_afk"), renamed(room.coord1, "hm_coord1_afk"):
        with renamed(imp, "hm_helper1"):
            assert said(imp, "!vouch hm_trainee") == "!vouch is for helpers only."
        with renamed(imp, "hm_coord1"):
            assert said(imp, "!promote hm_trainee") == "!promote is for coordinators only."
            assert said(imp, "!ready") == "!ready is for coordinators only."
    assert said(room.helper2, "!status hm_trainee") == (
        "hm_trainee is in training for 0m, 0/2 vouches: none yet"
    )


# -- vouches up to the threshold -----------------------------------------------------------------
def test_a_vouch_counts_and_a_repeat_only_updates_the_note(room: Room) -> None:
    assert said(room.helper1, "!vouch hm_trainee shadowed two chats") == (
        "vouched for hm_trainee: 1/2, training"
    )
    assert private(room.trainee) == "hm_helper1 vouched for you (1/2)."
    assert said(room.helper1, "!vouch hm_trainee calm with upset users") == (
        "already vouched for hm_trainee (1/2); note updated"
    )
    assert said(room.helper1, "!vouch hm_trainee") == "already vouched for hm_trainee (1/2)"
    assert room.query(lambda s: s.scalars(select(Vouch.note)).all()) == ["calm with upset users"]
    nothing_more(room.trainee, "vouched for you")
    # Two hours later: the status says since when, and from whom.
    room.bot.clock.advance(hours=2)
    assert said(room.nobody, "!status hm_trainee") == (
        "hm_trainee is in training for 2h, 1/2 vouches: hm_helper1 2h ago"
    )
    assert (
        said(room.trainee, "!status")
        == "you are in training for 2h, 1/2 vouches: hm_helper1 2h ago"
    )


def test_the_vouch_at_the_threshold_pings_the_present_coordinator(room: Room) -> None:
    assert said(room.helper2, "!vouch hm_trainee") == (
        "vouched for hm_trainee: 2/2, ready; coordinators are pinged"
    )
    # hm_coord1 is here: a private ping and a highlight in the channel. hm_coord2 is not.
    expected = ping("hm_trainee", "hm_helper1, hm_helper2", "spark_t1")
    assert private(room.coord1, "ready for promotion") == expected
    assert announced(room.coord1, r"ready for promotion") == (
        "hm_coord1: hm_trainee is ready for promotion (2/2)."
    )
    assert private(room.trainee) == "hm_helper2 vouched for you (2/2)."
    assert private(room.trainee) == "You are ready: a coordinator will add you to the team soon."
    nothing_more(room.coord1, "ready for promotion")
    assert events(room, "ready") == 1

    def pings(session: Session) -> list[tuple[str, bool]]:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ping"))
        return sorted((m.recipient, m.delivered_at is not None) for m in rows)

    assert room.query(pings) == [
        ("*!~hmcoord1@127.0.0.*", True),  # each coordinator *is* their mask entry
        ("hm_coord2!~hmcoord2@127.0.0.1", False),
    ]


def test_ready_in_detail_shows_a_removed_helpers_vouch_as_not_counted(room: Room) -> None:
    assert said(room.helper3, "!vouch hm_trainee knows the macros") == (
        "vouched for hm_trainee: 3/2, ready"
    )
    assert private(room.trainee) == "hm_helper3 vouched for you (3/2)."
    nothing_more(room.coord1, "ready for promotion")  # no second ready, no second ping
    assert said(room.coord1, "!helper remove hm_helper3") == (
        "hm_helper3 is no longer a helper; their vouches stay on record but no longer count"
    )
    assert said(room.helper3, "!vouch hm_trainee") == "!vouch is for helpers only."
    room.bot.clock.advance(hours=3)
    registered = stamp(trainee_times(room, "hmtrain")["registered"])
    assert said(room.coord1, "!ready hm_trainee") == (
        f"hm_trainee ({key('hm_trainee')}) 2/2 by hm_helper1, hm_helper2, not counted: "
        f"hm_helper3; spark_t1; waiting 3h; registered {registered}; "
        "notes: hm_helper1: calm with upset users; hm_helper3: knows the macros"
    )
    assert said(room.coord1, "!ready") == (
        f"1 ready for promotion, 0 overdue: hm_trainee ({key('hm_trainee')}) 2/2 by "
        "hm_helper1, hm_helper2, not counted: hm_helper3; spark_t1; waiting 3h"
    )
    assert said(room.helper1, "!status hm_trainee") == (
        "hm_trainee is ready for 3h, 2/2 vouches: hm_helper1, hm_helper2, not counted: "
        "hm_helper3; waiting for a coordinator"
    )


def test_helper_add_names_whoever_holds_the_nick_now(room: Room) -> None:
    imp = room.imp
    with renamed(room.helper3, "hm_helper3_x"), renamed(imp, "hm_helper3"):
        assert said(room.coord1, "!helper add hm_helper3_x") == "hm_helper3_x is now a helper"
        assert said(imp, "!vouch hm_trainee") == "!vouch is for helpers only."
        assert said(room.helper3, "!vouch hm_trainee") == "already vouched for hm_trainee (3/2)"
    assert said(room.helper1, "!status hm_trainee") == (
        "hm_trainee is ready for 3h, 3/2 vouches: hm_helper1, hm_helper2, hm_helper3_x; "
        "waiting for a coordinator"
    )


# -- the late coordinator ----------------------------------------------------------------------
def test_the_late_coordinator_is_pinged_on_arrival_once(room: Room) -> None:
    coord2 = room.connect("hm_coord2")
    expected = ping("hm_trainee", "hm_helper1, hm_helper2", "spark_t1")
    assert private(coord2, "ready for promotion") == expected
    room.bot.call(room.bot.bot.delivery.sweep)
    nothing_more(coord2, "ready for promotion")
    nothing_more(room.coord1, "ready for promotion")
    assert events(room, "ping_delivered") == 2


# -- promotion -------------------------------------------------------------------------------------
def test_promote_then_the_new_helper_vouches_for_someone_else(room: Room) -> None:
    assert (
        said(room.coord1, "!promote hm_trainee")
        == "hm_trainee is now a helper; they have been told"
    )
    assert private(room.trainee) == "You are now a helper (promoted by hm_coord1): welcome!"
    when = stamp(trainee_times(room, "hmtrain")["promoted"])
    already = f"hm_trainee is already a helper: promoted by hm_coord1 on {when}"
    assert said(room.coord2, "!promote hm_trainee") == already
    assert said(room.helper2, "!vouch hm_trainee") == already
    assert said(room.trainee, "!newhelper") == "you are already a helper on the team"
    assert said(room.trainee, "!status") == f"you are a helper, promoted by hm_coord1 on {when}"
    assert attempts(room, "hmtrain") == [("promoted", None)]
    # The new helper vouches for someone else.
    assert said(room.tb, "!newhelper") == WELCOMED
    assert said(room.trainee, "!vouch hm_tb saw them handle a refund") == (
        "vouched for hm_tb: 1/2, training"
    )
    assert private(room.tb) == "hm_trainee vouched for you (1/2)."


def test_history_goes_by_private_message_with_the_actors(room: Room) -> None:
    assert said(room.nobody, "!history hm_trainee") == (
        "history of hm_trainee: 9 events, sent privately"
    )
    lines = [private(room.nobody) for _ in range(9)]
    when = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC #1 ")
    assert all(when.match(line) for line in lines), lines
    assert [when.sub("", line) for line in lines] == [
        "registered by hm_trainee: chat account spark_t1",
        "vouched by hm_helper1: shadowed two chats",
        "vouch_note by hm_helper1: calm with upset users",
        "vouched by hm_helper2",
        "ready by hm_helper2: 2/2",
        "ping_delivered by bot: to hm_coord1",
        "vouched by hm_helper3_x: knows the macros",  # named by the nick they used last
        "ping_delivered by bot: to hm_coord2",
        "promoted by hm_coord1",
    ]
    nothing_more(room.nobody, "")
    # By private message, the lines come without the summary.
    assert asked(room.nobody, "!history hm_trainee") == lines[0]


# -- a nick change, and an impostor on the old nick --------------------------------------------
def test_a_trainee_keeps_their_vouches_under_a_new_nick(room: Room) -> None:
    with renamed(room.tb, "hm_tb_away"):
        assert said(room.helper1, "!status hm_tb_away") == (
            "hm_tb_away is in training for 0m, 1/2 vouches: hm_trainee 0m ago"
        )
        assert (
            said(room.tb, "!status") == "you are in training for 0m, 1/2 vouches: hm_trainee 0m ago"
        )
        with renamed(room.imp, "hm_tb"):
            assert said(room.helper1, "!vouch hm_tb") == (
                "hm_tb is not a trainee (ask them to say !newhelper)"
            )
            assert said(room.helper1, "!status hm_tb") == (
                "hm_tb is not a trainee (say !newhelper to start)"
            )
            assert said(room.imp, "!withdraw") == "you are not in training"
            assert said(room.imp, "!status") == "you are not a trainee (say !newhelper to start)"
    assert said(room.helper1, "!status hm_tb") == (
        "hm_tb is in training for 0m, 1/2 vouches: hm_trainee 0m ago"
    )
    assert attempts(room, "hmimp") == []
    # Back on their nick, they speak to the bot: the nick it names them by in pings.
    assert said(room.tb, "!status") == "you are in training for 0m, 1/2 vouches: hm_trainee 0m ago"


# -- hold, unvouch, reject, withdraw -------------------------------------------------------------
def test_no_ping_while_on_hold_and_unhold_pings_everyone(room: Room) -> None:
    reason = "needs more evening shifts"
    assert said(room.coord1, f"!hold hm_tb {reason}") == f"hm_tb is on hold: {reason}"
    assert said(room.coord2, "!hold hm_tb again") == (
        f"hm_tb is already on hold (by hm_coord1: {reason})"
    )
    assert said(room.helper1, "!vouch hm_tb") == "vouched for hm_tb: 2/2, on hold"
    assert private(room.tb) == "hm_helper1 vouched for you (2/2)."
    for coordinator in (room.coord1, room.coord2):
        nothing_before_pong(coordinator, BOT, r"hm_tb is ready", command=None, private=False)
    assert said(room.nobody, "!status hm_tb") == (
        f"hm_tb is on hold for 0m by hm_coord1: {reason}; 2/2 vouches"
    )
    assert said(room.coord2, "!promote hm_tb") == f"hm_tb is on hold ({reason}): !unhold first"
    assert said(room.nobody, "!trainees") == "0 ready, 0 in training, 1 on hold"
    assert said(room.coord2, "!unhold hm_tb") == (
        "hm_tb is off hold and ready; coordinators are pinged"
    )
    assert announced(room.helper1, r"hm_tb is ready") == (
        "hm_coord1, hm_coord2: hm_tb is ready for promotion."
    )
    for coordinator in (room.coord1, room.coord2):
        assert private(coordinator, "hm_tb") == ping("hm_tb", "hm_trainee, hm_helper1")
        nothing_more(coordinator, "hm_tb")
    assert private(room.tb) == "You are ready: a coordinator will add you to the team soon."
    assert said(room.coord1, "!unhold hm_tb") == "hm_tb is not on hold (ready)"


def test_unvouch_takes_a_ready_trainee_back_and_cancels_the_waiting_ping(room: Room) -> None:
    assert said(room.helper1, "!unvouch hm_tb") == (
        "withdrew your vouch for hm_tb: 1/2; back to training"
    )
    assert said(room.helper1, "!unvouch hm_tb") == "you have not vouched for hm_tb"
    # Ready again while hm_coord2 is away: their ping waits...
    room.coord2.away("in a meeting")
    assert said(room.helper1, "!vouch hm_tb second look") == (
        "vouched for hm_tb: 2/2, ready; coordinators are pinged"
    )
    assert announced(room.helper1, r"hm_tb is ready") == (
        "hm_coord1, hm_coord2: hm_tb is ready for promotion (2/2)."
    )
    assert private(room.coord1, "hm_tb") == ping("hm_tb", "hm_trainee, hm_helper1")
    nothing_more(room.coord2, "hm_tb")
    # ...and is cancelled when the trainee is no longer ready.
    assert said(room.helper1, "!unvouch hm_tb") == (
        "withdrew your vouch for hm_tb: 1/2; back to training"
    )
    room.coord2.away(None)
    room.bot.call(room.bot.bot.delivery.sweep)
    nothing_more(room.coord2, "hm_tb")
    assert private(room.tb, "vouched") == "hm_helper1 vouched for you (2/2)."
    assert (
        private(room.tb, "ready") == "You are ready: a coordinator will add you to the team soon."
    )

    def pings_to_coord2(session: Session) -> list[tuple[bool, bool]]:
        stmt = (
            select(OutboxMessage)
            .where(
                OutboxMessage.kind == "ping",
                OutboxMessage.recipient == "hm_coord2!~hmcoord2@127.0.0.1",
            )
            .where(OutboxMessage.text.startswith("hm_tb "))
            .order_by(OutboxMessage.id)
        )
        return [
            (m.delivered_at is not None, m.cancelled_at is not None) for m in session.scalars(stmt)
        ]

    assert room.query(pings_to_coord2) == [(True, False), (False, True)]
    assert said(room.nobody, "!status hm_tb") == (
        "hm_tb is in training for 0m, 1/2 vouches: hm_trainee 0m ago"
    )
    assert said(room.coord1, "!promote hm_tb") == "hm_tb is in training (1/2 vouches), not ready"
    assert events(room, "unready") == 2


def test_reject_keeps_the_reason_and_newhelper_starts_afresh(room: Room) -> None:
    assert said(room.tc, "!newhelper") == WELCOMED
    assert said(room.helper2, "!vouch hm_tc") == "vouched for hm_tc: 1/2, training"
    assert private(room.tc) == "hm_helper2 vouched for you (1/2)."
    reason = "never shadowed a chat"
    assert said(room.coord1, f"!reject hm_tc {reason}") == (
        f"hm_tc's training is closed (rejected): {reason}"
    )
    assert private(room.tc) == f"Your training was closed by hm_coord1: {reason}"
    assert said(room.helper1, "!vouch hm_tc") == (
        "hm_tc is not a trainee (ask them to say !newhelper)"
    )
    assert said(room.coord2, "!reject hm_tc twice") == (
        "hm_tc is not a trainee (ask them to say !newhelper)"
    )
    assert said(room.nobody, "!status hm_tc") == (
        f"hm_tc is not in training: rejected 0m ago ({reason}); !newhelper starts afresh"
    )
    assert said(room.tc, "!newhelper") == WELCOMED.replace("welcome!", "welcome back!")
    # The new attempt carries the rejection: whoever looks sees it.
    assert said(room.nobody, "!status hm_tc") == (
        f"hm_tc is in training for 0m, 0/2 vouches: none yet; {rejected_tc(room)}"
    )
    assert attempts(room, "hmtc") == [("rejected", reason), ("training", None)]


def rejected_tc(room: Room) -> str:
    """What pings and !status say of hm_tc's first attempt, rejected by hm_coord1."""
    closed = room.query(
        lambda s: s.scalar(select(Attempt.closed_at).where(Attempt.state == "rejected"))
    )
    return f"previously rejected: never shadowed a chat (by hm_coord1, {closed:%Y-%m-%d})"


def test_withdraw_leaves_training_and_newhelper_comes_back(room: Room) -> None:
    assert said(room.nobody, "!withdraw") == "you are not in training"
    assert said(room.td, "!newhelper") == WELCOMED
    assert said(room.td, "!withdraw moving abroad") == (
        "you have left training (withdrawn); say !newhelper to come back any time"
    )
    assert said(room.td, "!withdraw") == "you are not in training"
    assert said(room.td, "!status") == (
        "you are not in training: withdrawn 0m ago (moving abroad); !newhelper starts afresh"
    )
    assert said(room.helper1, "!vouch hm_td") == (
        "hm_td is not a trainee (ask them to say !newhelper)"
    )
    assert said(room.td, "!newhelper") == WELCOMED.replace("welcome!", "welcome back!")
    assert attempts(room, "hmtd") == [("withdrawn", "moving abroad"), ("training", None)]


def test_a_long_trainee_list_goes_by_private_message_in_pages(room: Room) -> None:
    assert (
        said(room.helper2, "!trainees")
        == "0 ready, 3 in training, 0 on hold; the list is in private"
    )
    assert private(room.helper2) == "hm_tb (training 1/2), hm_tc (training 0/2)"
    assert private(room.helper2) == "page 1 of 2; say !trainees 2 for more"
    assert asked(room.helper2, "!trainees 2") == "hm_td (training 0/2)"
    assert private(room.helper2) == "page 2 of 2"
    nothing_more(room.helper2, "")


# -- role changes ----------------------------------------------------------------------------------
def test_coordinator_add_and_remove(room: Room) -> None:
    assert said(room.helper2, "!coordinator add hm_helper2") == (
        "!coordinator is for coordinators only."
    )
    assert said(room.coord1, "!coordinator add hm_helper2") == "hm_helper2 is now a coordinator"
    assert said(room.coord1, "!coordinator add hm_helper2") == "hm_helper2 is already a coordinator"
    assert said(room.helper2, "!ready") == "nobody is waiting for promotion"
    assert said(room.coord2, "!coordinator remove hm_helper2") == (
        "hm_helper2 is no longer a coordinator, now a helper"
    )
    assert said(room.helper2, "!ready") == "!ready is for coordinators only."
    assert said(room.coord1, "!helper remove hm_coord2") == (
        "hm_coord2 is a coordinator: !coordinator remove hm_coord2 first"
    )
    assert said(room.coord1, "!coordinator remove hm_nobody") == "hm_nobody is not a coordinator"


def test_helper_add_and_remove_follow_the_person_not_the_nick(room: Room) -> None:
    assert said(room.coord1, "!helper add hm_nobody") == "hm_nobody is now a helper"
    with renamed(room.nobody, "hm_nobody_x") as nobody, renamed(room.imp, "hm_nobody") as imp:
        assert said(imp, "!vouch hm_tc") == "!vouch is for helpers only."
        assert said(nobody, "!vouch hm_tc") == "vouched for hm_tc: 1/2, training"
        assert private(room.tc) == "hm_nobody_x vouched for you (1/2)."
        assert said(room.coord1, "!helper remove hm_nobody_x") == (
            "hm_nobody_x is no longer a helper; their vouches stay on record but no longer count"
        )
        assert said(room.helper1, "!status hm_tc") == (
            "hm_tc is in training for 0m, 0/2 vouches: not counted: hm_nobody_x; "
            + rejected_tc(room)
        )
        # Back on the team, their vouch counts again; a second makes hm_tc ready...
        assert said(room.coord1, "!helper add hm_nobody_x") == "hm_nobody_x is now a helper"
        assert said(room.helper1, "!vouch hm_tc") == (
            "vouched for hm_tc: 2/2, ready; coordinators are pinged"
        )
        for coordinator in (room.coord1, room.coord2):
            assert private(coordinator, "hm_tc") == ping(
                "hm_tc", "hm_nobody_x, hm_helper1", past=rejected_tc(room)
            )
        # ...and removing them again takes hm_tc back to training.
        assert said(room.coord1, "!helper remove hm_nobody_x") == (
            "hm_nobody_x is no longer a helper; their vouches stay on record but no longer "
            "count; now hm_tc (training)"
        )
    assert said(room.nobody, "!vouch hm_tc") == "!vouch is for helpers only."
    assert said(room.helper1, "!status hm_tc") == (
        "hm_tc is in training for 0m, 1/2 vouches: hm_helper1 0m ago, not counted: hm_nobody_x; "
        + rejected_tc(room)
    )

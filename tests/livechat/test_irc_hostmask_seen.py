"""Coordinators named by a mask whom the bot has only seen, on a real ngircd in hostmask mode.

A ``nick!user@host`` mask in ``[livechat] coordinators``/``helpers`` names someone as soon as
the bot sees them in its channel (their JOIN, the WHO the bot sends when it joins, a NICK),
not when they first use a command. So a coordinator who never says a word is pinged when a
trainee becomes ready, at once if present and on return if not; one who arrives while a
trainee is waiting is told so in one message, once. Someone no mask names costs the bot no
database access when they come, change nick or go.

Each test runs a bot of its own (its nick, channel and SQLite file). As in
``test_irc_hostmask.py`` ngircd runs without an ident server, so user names show with a
``~`` in front, and the masks say so.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ircbot_plugins.livechat.config import DEFAULT_WELCOME
from ircbot_plugins.livechat.models import Event, Person
from ircbot_plugins.livechat.roles import Role
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from ircbot.outbox import OutboxMessage
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient, nothing_before_pong
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(60)

#: nick -> user name (ident): the identity is ``~ident@127.0.0.1``.
IDENTS = {
    "hs_c1": "hscoord1",
    "hs_c2": "hscoord2",
    "hs_c3": "hscoord3",
    "hs_c4": "hscoord4",
    "hs_h1": "hshelp1",
    "hs_h2": "hshelp2",
    "hs_t1": "hstrain1",
    "hs_n": "hsnobody",
}
LIVECHAT = {
    "threshold": 2,
    "helpers": ["*!~hshelp1@127.0.0.1", "*!~hshelp2@127.0.0.*"],
    # The last names the nick too: it matches only while they are hs_c4.
    "coordinators": [
        "*!~hscoord1@127.0.0.*",
        "*!~hscoord2@127.0.0.1",
        "~hscoord3@127.0.0.*",
        "hs_c4!~hscoord4@127.0.0.*",
    ],
}
WELCOMED = f"welcome! You are now a trainee; 2 helpers' vouches make you ready. {DEFAULT_WELCOME}"
PING = (
    "hs_t1 (~hstrain1@127.0.0.1) is ready for promotion (2 vouches: hs_h1, hs_h2). "
    "Say !promote hs_t1"
)


def key(nick: str) -> str:
    """The identity the bot gives ``nick``: the one mask entry naming their ident, if any
    (a person matched by a mask *is* that entry), else their ``user@host``."""
    ident = f"~{IDENTS[nick]}@"
    masks = [m for m in (*LIVECHAT["helpers"], *LIVECHAT["coordinators"]) if ident in m]
    return masks[0] if len(masks) == 1 else f"{ident}127.0.0.1"


class Room:
    """One bot in its channel, the people who come in, and how to read the bot's database."""

    def __init__(self, server: NgircdServer, nick: str, url: str, connect: Callable) -> None:
        self.server, self.nick, self.channel = server, nick, f"#{nick}"
        self.config = bot_config(
            server.host,
            server.port,
            url,
            irc={"nick": nick, "channels": [self.channel]},
            bot={"plugins": ["livechat"], "user_burst": 1000, "user_rate": 100.0},
            livechat=LIVECHAT,
        )
        self._connect = connect
        self.bot = BotThread(self.config).start()

    def join(self, nick: str, ident: str | None = None) -> IRCTestClient:
        """``nick`` connects (user name ``ident``, by default their own) and joins."""
        client = self._connect(nick, channels=(self.channel,), user=ident or IDENTS[nick])
        return client

    def restart(self, witness: IRCTestClient) -> None:
        """Stop the bot and start another on the same database; ``witness`` sees it go."""
        self.bot.stop()
        witness.expect(command="QUIT", source=self.nick)  # its nick is free again
        self.bot = BotThread(self.config).start()

    # -- talking ---------------------------------------------------------------------------
    def said(self, client: IRCTestClient, text: str) -> str:
        """``client`` says ``text`` in the channel; the bot's answer there, minus ``nick: ``."""
        client.say(self.channel, text)
        prefix = f"{client.current_nick}: "
        reply = client.expect(rf"^{re.escape(prefix)}", source=self.nick, target=self.channel)
        return reply.text[len(prefix) :]

    def private(self, client: IRCTestClient, pattern: str | None = None) -> str:
        return client.expect(pattern, source=self.nick, target=client.current_nick).text

    def nothing_private(self, client: IRCTestClient, pattern: str) -> None:
        """No private message matching ``pattern`` waits unread, nor comes before the bot's
        answer to a ``!ping`` sent now."""
        nothing_before_pong(client, self.nick, pattern)

    # -- the database ----------------------------------------------------------------------
    def query(self, fn: Callable[[Session], Any]) -> Any:
        return self.bot.query(fn)

    def people(self) -> dict[str, tuple[Role, str | None]]:
        """identity -> (role, the nick they were last seen with)."""
        rows = self.query(
            lambda s: s.execute(select(Person.identity, Person.role, Person.last_nick))
        )
        return {identity: (role, nick) for identity, role, nick in rows}

    def count(self, model: type, *where: Any) -> int:
        return self.query(lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))

    def outbox(self, kind: str) -> list[tuple[str, bool]]:
        """(recipient, delivered) of the messages of ``kind``, by recipient."""
        stmt = select(OutboxMessage).where(OutboxMessage.kind == kind)
        rows = self.query(
            lambda s: [(m.recipient, m.delivered_at is not None) for m in s.scalars(stmt)]
        )
        return sorted(rows)

    def delivered(self, kind: str, expected: list[tuple[str, bool]], timeout: float = 5) -> None:
        """Wait (bounded) until the ``kind`` rows are ``expected``: a row is marked delivered
        just after its line is on the socket, a moment after the client may have read it."""
        deadline = time.monotonic() + timeout
        while (rows := self.outbox(kind)) != sorted(expected):
            assert time.monotonic() < deadline, rows
            time.sleep(0.02)

    def wait_who(self, nick: str, timeout: float = 5) -> None:
        """Wait (bounded) until the bot has ``nick``'s user@host: its WHO answer was handled."""
        deadline = time.monotonic() + timeout

        def known() -> bool:
            user = self.bot.bot.network.get(nick)
            return user is not None and bool(user.host)

        while not self.bot.call(known):
            assert time.monotonic() < deadline, f"no WHO answer about {nick}"
            time.sleep(0.02)

    @contextlib.contextmanager
    def statements(self) -> Iterator[list[str]]:
        """The SQL statements the bot runs inside the block (reads included)."""
        seen: list[str] = []
        engine = self.bot.bot.engine

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def open_room(
    ngircd: NgircdServer, tmp_path: Path, irc_client: Callable[..., IRCTestClient]
) -> Iterator[Callable[[str], Room]]:
    """``open_room(nick)``: a bot in ``#nick`` on a fresh SQLite file, stopped at the end."""
    rooms: list[Room] = []

    def open_(nick: str) -> Room:
        rooms.append(Room(ngircd, nick, f"sqlite:///{tmp_path / 'bot.db'}", irc_client))
        return rooms[-1]

    yield open_
    for room in rooms:
        room.bot.stop()


def make_ready(room: Room, trainee: IRCTestClient, h1: IRCTestClient, h2: IRCTestClient) -> None:
    assert room.said(trainee, "!newhelper") == WELCOMED
    assert room.said(h1, "!vouch hs_t1") == "vouched for hs_t1: 1/2, training"
    assert room.said(h2, "!vouch hs_t1") == (
        "vouched for hs_t1: 2/2, ready; coordinators are pinged"
    )


# -- pinged without having said a word ----------------------------------------------------------
def test_a_masked_coordinator_who_never_spoke_is_pinged_at_once_or_on_return(
    open_room: Callable[[str], Room],
) -> None:
    room = open_room("hsbot_ping")
    c1, c2 = room.join("hs_c1"), room.join("hs_c2")
    h1, h2, t1 = room.join("hs_h1"), room.join("hs_h2"), room.join("hs_t1")
    c2.part(room.channel, "back later")  # seen once, never said a word
    assert room.said(t1, "!newhelper") == WELCOMED
    assert room.people() == {
        key("hs_c1"): (Role.COORDINATOR, "hs_c1"),
        key("hs_c2"): (Role.COORDINATOR, "hs_c2"),
        key("hs_h1"): (Role.HELPER, "hs_h1"),
        key("hs_h2"): (Role.HELPER, "hs_h2"),
        key("hs_t1"): (Role.TRAINEE, "hs_t1"),
    }
    assert room.said(h1, "!vouch hs_t1") == "vouched for hs_t1: 1/2, training"
    assert room.said(h2, "!vouch hs_t1") == (
        "vouched for hs_t1: 2/2, ready; coordinators are pinged"
    )
    # hs_c1 is here: pinged at once, privately and by a highlight. hs_c2's ping waits...
    assert room.private(c1, "ready for promotion") == PING
    highlight = c1.expect(r"ready for promotion", source=room.nick, target=room.channel)
    assert highlight.text == "hs_c1: hs_t1 is ready for promotion (2/2)."
    room.delivered("ping", [(key("hs_c1"), True), (key("hs_c2"), False)])
    # ...until they come back: the ping, once, and no catch-up (they were a coordinator).
    c2.join(room.channel)
    assert room.private(c2, "ready for promotion") == PING
    room.nothing_private(c2, "")
    room.nothing_private(c1, "ready for promotion")
    room.delivered("ping", [(key("hs_c1"), True), (key("hs_c2"), True)])
    assert room.count(OutboxMessage, OutboxMessage.kind == "catch_up") == 0


# -- arriving while a trainee waits ---------------------------------------------------------------
def test_a_masked_coordinator_arriving_while_a_trainee_waits_is_told_once(
    open_room: Callable[[str], Room],
) -> None:
    room = open_room("hsbot_late")
    c1, h1, h2, t1 = (room.join(n) for n in ("hs_c1", "hs_h1", "hs_h2", "hs_t1"))
    make_ready(room, t1, h1, h2)
    assert room.private(c1, "ready for promotion") == PING
    c3 = room.join("hs_c3")
    assert room.private(c3) == "1 trainee awaits promotion: hs_t1 — say !ready"
    # Seen again, in this run: a rejoin, a new nick. Nothing more, and no ping per trainee.
    c3.part(room.channel)
    c3.join(room.channel)
    c3.nick("hs_c3_x")
    room.nothing_private(c3, "")
    assert room.said(c3, "!ready").startswith(
        "1 ready for promotion, 0 overdue: hs_t1 (~hstrain1@127.0.0.1) 2/2"
    )
    room.delivered("catch_up", [(key("hs_c3"), True)])
    assert room.outbox("ping") == [(key("hs_c1"), True)]
    assert room.count(Event, Event.kind == "catch_up") == 1
    # After a restart the bot finds them in the channel (its WHO) and has nothing to say.
    room.restart(witness=c3)
    room.wait_who("hs_c3_x")
    room.nothing_private(c3, "")
    assert room.outbox("catch_up") == [(key("hs_c3"), True)]
    assert room.count(Event, Event.kind == "catch_up") == 1


# -- what seeing someone costs ---------------------------------------------------------------------
def test_seeing_someone_no_mask_names_costs_no_database_access(
    open_room: Callable[[str], Room],
) -> None:
    room = open_room("hsbot_cost")
    c1 = room.join("hs_c1")
    assert room.said(c1, "!ping") == "pong"  # the bot has seen hs_c1: one write, their role
    people, events = room.count(Person), room.count(Event)
    assert (people, events) == (1, 1)
    with room.statements() as statements:
        nobody = room.join("hs_n")
        nobody.nick("hs_n_x")
        assert room.said(nobody, "!ping") == "pong"
        # Seen before in this run: remembered, not looked up again.
        c1.part(room.channel)
        c1.join(room.channel)
        assert room.said(c1, "!ping") == "pong"
        # A mask that names a nick names no one else: not while they are hs_c4_x.
        c4 = room.join("hs_c4_x", ident="hscoord4")
        assert room.said(c4, "!ping") == "pong"
    assert statements == []
    assert (room.count(Person), room.count(Event)) == (people, events)
    c4.nick("hs_c4")  # now the mask names them
    assert room.said(c4, "!ping") == "pong"
    assert room.people()[key("hs_c4")] == (Role.COORDINATOR, "hs_c4")

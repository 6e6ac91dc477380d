"""The trainee process under pressure, on a real ngircd in hostmask mode: races, restarts, time.

Two helpers vouch for the same trainee at the same instant, and two coordinators promote the
same trainee at the same instant; the bot restarts (stopped, or killed) with a coordinator's
ping not yet delivered; a ready trainee waits past the promise and an idle one for weeks.
Each runs on SQLite and on PostgreSQL (skipped if it is not running on 127.0.0.1:5432).

The connections (``IDENTS``) are made once for the module; each test starts a bot of its own,
with a nick, a channel and a fresh database of its own, and everyone joins its channel. As in
``test_irc_hostmask.py`` the team is named by ``nick!user@host`` masks, which name the
coordinators and helpers as soon as they join, before they say anything.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ircbot_plugins.livechat.config import DEFAULT_WELCOME
from ircbot_plugins.livechat.models import Attempt, Event, Person
from ircbot_plugins.livechat.store import stamp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ircbot import storage
from ircbot.outbox import OutboxMessage
from tests.support.botproc import BotProcess
from tests.support.botthread import BotThread, ShiftClock, bot_config
from tests.support.client import IRCTestClient, nothing_before_pong
from tests.support.ngircd import NgircdServer
from tests.support.postgres import BACKENDS, database_url

pytestmark = pytest.mark.timeout(120)

IDENTS = {
    "hr_t1": "hrt1",
    "hr_t2": "hrt2",
    "hr_t3": "hrt3",
    "hr_helper1": "hrhelp1",
    "hr_helper2": "hrhelp2",
    "hr_coord1": "hrcoord1",
    "hr_coord2": "hrcoord2",
}
LIVECHAT = {
    "threshold": 2,
    "helpers": ["*!~hrhelp1@127.0.0.1", "*!~hrhelp2@127.0.0.1"],
    "coordinators": ["*!~hrcoord1@127.0.0.1", "*!~hrcoord2@127.0.0.1"],
    "sla_hours": 24.0,
    "first_reminder_hours": 24.0,
    "reminder_hours": 12.0,
    "idle_days": 14.0,
}
WELCOMED = f"welcome! You are now a trainee; 2 helpers' vouches make you ready. {DEFAULT_WELCOME}"


# -- the people, once for the module ----------------------------------------------------------
class People:
    def __init__(self, server: NgircdServer) -> None:
        self.server = server
        self.clients = {
            nick: IRCTestClient.connect(server.host, server.port, nick, user=ident)
            for nick, ident in IDENTS.items()
        }

    def __getattr__(self, name: str) -> IRCTestClient:
        try:
            return self.clients[f"hr_{name}"]
        except KeyError:
            raise AttributeError(name) from None

    def close(self) -> None:
        for client in self.clients.values():
            client.quit(timeout=1)


@pytest.fixture(scope="module")
def people(ngircd: NgircdServer) -> Iterator[People]:
    group = People(ngircd)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database for one bot: a SQLite file, or a fresh PostgreSQL database."""
    yield from database_url(request.param, tmp_path, "bot")


class Room:
    """One bot (in this process, or as a process) in its channel, and how to read its data."""

    def __init__(self, nick: str, channel: str, url: str) -> None:
        self.nick, self.channel, self.url = nick, channel, url
        self.engine = storage.make_engine(url)
        self.factory = storage.make_session_factory(self.engine)

    def query(self, fn: Callable[[Session], Any]) -> Any:
        with storage.transaction(self.factory) as session:
            return fn(session)

    def config(self, server: NgircdServer) -> dict[str, Any]:
        return bot_config(
            server.host,
            server.port,
            self.url,
            irc={"nick": self.nick, "channels": [self.channel]},
            bot={"plugins": ["livechat"], "user_burst": 1000, "user_rate": 100.0},
            livechat=LIVECHAT,
        )

    # -- talking to the bot ------------------------------------------------------------------
    def send(self, client: IRCTestClient, text: str) -> None:
        client.say(self.channel, text)

    def answer(self, client: IRCTestClient) -> str:
        """The bot's next answer to ``client`` in the channel, minus ``nick: ``."""
        prefix = f"{client.current_nick}: "
        reply = client.expect(rf"^{re.escape(prefix)}", source=self.nick, target=self.channel)
        return reply.text[len(prefix) :]

    def said(self, client: IRCTestClient, text: str) -> str:
        self.send(client, text)
        return self.answer(client)

    def private(self, client: IRCTestClient, pattern: str | None = None) -> str:
        return client.expect(pattern, source=self.nick, target=client.current_nick).text

    def nothing_more(self, clients: Iterable[IRCTestClient], pattern: str) -> None:
        """No private message from the bot matching ``pattern`` waits unread for any of
        ``clients``, or comes before its answer to a ``!ping`` each of them sends now."""
        for client in clients:
            nothing_before_pong(client, self.nick, pattern)

    def count(self, kind: str) -> int:
        return self.query(lambda s: s.scalar(select(func.count()).where(Event.kind == kind)))

    def pings(self) -> list[tuple[str, bool]]:
        """(recipient, delivered) of every coordinator's ping, by recipient."""
        rows = self.query(
            lambda s: [
                (m.recipient, m.delivered_at is not None)
                for m in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ping"))
            ]
        )
        return sorted(rows)


@contextlib.contextmanager
def room_for(people: People, nick: str, url: str) -> Iterator[Room]:
    """A room (not started) whose channel everyone leaves at the end."""
    room = Room(nick, f"#{nick}", url)
    try:
        yield room
    finally:
        for client in people.clients.values():
            with contextlib.suppress(AssertionError, OSError):
                client.part(room.channel, timeout=2)
        room.engine.dispose()


def join_all(room: Room, clients: list[IRCTestClient]) -> None:
    for client in clients:
        client.join(room.channel)


def delivered(room: Room, expected: list[tuple[str, bool]], timeout: float = 5) -> None:
    """Wait (bounded) until the pings in the outbox are ``expected``: a row is marked
    delivered just after its line is on the socket, a moment after a client may read it."""
    deadline = time.monotonic() + timeout
    while (pings := room.pings()) != sorted(expected):
        assert time.monotonic() < deadline, pings
        time.sleep(0.02)


def named(nick: str) -> str:
    """``nick (~ident@127.0.0.1)``: how pings, reminders and !ready name a trainee."""
    return f"{nick} (~{IDENTS[nick]}@127.0.0.1)"


def ping(nick: str, vouchers: str) -> str:
    return f"{named(nick)} is ready for promotion (2 vouches: {vouchers}). Say !promote {nick}"


def at_once(*actions: Callable[[], None]) -> None:
    """Run the actions on threads released together by a barrier (bounded)."""
    barrier = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def run(action: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=5)
            action()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads) and not errors, errors


# -- races -----------------------------------------------------------------------------------------
def test_two_helpers_vouching_at_once_make_one_ready_and_one_ping_each(
    people: People, ngircd: NgircdServer, db_url: str
) -> None:
    backend = "pg" if db_url.startswith("postgresql") else "sq"
    with room_for(people, f"hrrace_{backend}", db_url) as room, BotThread(room.config(ngircd)):
        join_all(room, list(people.clients.values()))
        helpers = (people.helper1, people.helper2)
        for round_, trainee in enumerate((people.t1, people.t2, people.t3), start=1):
            name = trainee.current_nick
            assert room.said(trainee, "!newhelper") == WELCOMED
            at_once(*(lambda h=h, n=name: room.send(h, f"!vouch {n}") for h in helpers))
            answers = sorted(room.answer(h) for h in helpers)
            assert answers == [
                f"vouched for {name}: 1/2, training",
                f"vouched for {name}: 2/2, ready; coordinators are pinged",
            ]
            for coordinator in (people.coord1, people.coord2):
                text = room.private(coordinator, "ready for promotion")
                assert text in (
                    ping(name, "hr_helper1, hr_helper2"),
                    ping(name, "hr_helper2, hr_helper1"),
                )
            room.nothing_more((people.coord1, people.coord2), "ready for promotion")
            assert room.count("ready") == round_
        assert room.count("vouched") == 6
        delivered(room, [("*!~hrcoord1@127.0.0.1", True), ("*!~hrcoord2@127.0.0.1", True)] * 3)


def test_two_coordinators_promoting_at_once_make_one_promotion(
    people: People, ngircd: NgircdServer, db_url: str
) -> None:
    """One promotion; the other coordinator is told who promoted, and when."""
    backend = "pg" if db_url.startswith("postgresql") else "sq"
    coordinators = (people.coord1, people.coord2)
    with room_for(people, f"hrprom_{backend}", db_url) as room, BotThread(room.config(ngircd)):
        join_all(room, list(people.clients.values()))
        trainees = (people.t1, people.t2, people.t3)
        for trainee in trainees:
            name = trainee.current_nick
            assert room.said(trainee, "!newhelper") == WELCOMED
            for helper in (people.helper1, people.helper2):
                room.said(helper, f"!vouch {name}")
            for coordinator in coordinators:
                room.private(coordinator, rf"^{re.escape(named(name))} is ready for promotion")
        for round_, trainee in enumerate(trainees, start=1):
            name = trainee.current_nick
            at_once(*(lambda c=c, n=name: room.send(c, f"!promote {n}") for c in coordinators))
            answers = {c.current_nick: room.answer(c) for c in coordinators}
            won = [
                n for n, a in answers.items() if a == f"{name} is now a helper; they have been told"
            ]
            assert len(won) == 1, answers
            (lost,) = set(answers) - set(won)
            promoted_at = room.query(
                lambda s, t=trainee: s.scalar(
                    select(Attempt.promoted_at)
                    .join(Person, Person.id == Attempt.person_id)
                    .where(Person.identity == f"~{IDENTS[t.current_nick]}@127.0.0.1")
                )
            )
            assert answers[lost] == (
                f"{name} is already a helper: promoted by {won[0]} on {stamp(promoted_at)}"
            )
            assert room.private(trainee, "now a helper") == (
                f"You are now a helper (promoted by {won[0]}): welcome!"
            )
            room.nothing_more([trainee], "now a helper")
            assert room.count("promoted") == round_


# -- restarts --------------------------------------------------------------------------------------
def ready_while_coord2_is_away(room: Room, people: People) -> None:
    """hr_coord2 has been seen but is gone; hr_t1 becomes ready; only hr_coord1 hears of it."""
    join_all(room, [people.coord1, people.coord2, people.helper1, people.helper2, people.t1])
    people.coord2.part(room.channel)
    assert room.said(people.t1, "!newhelper") == WELCOMED
    assert room.said(people.helper1, "!vouch hr_t1") == "vouched for hr_t1: 1/2, training"
    assert room.said(people.helper2, "!vouch hr_t1") == (
        "vouched for hr_t1: 2/2, ready; coordinators are pinged"
    )
    assert room.private(people.coord1, "ready") == ping("hr_t1", "hr_helper1, hr_helper2")
    delivered(room, [("*!~hrcoord1@127.0.0.1", True), ("*!~hrcoord2@127.0.0.1", False)])


def coord2_arrives_and_is_pinged_once(room: Room, people: People, joined: bool = False) -> None:
    if not joined:
        people.coord2.join(room.channel)
    assert room.private(people.coord2, "ready") == ping("hr_t1", "hr_helper1, hr_helper2")
    room.nothing_more((people.coord2, people.coord1), "ready")
    delivered(room, [("*!~hrcoord1@127.0.0.1", True), ("*!~hrcoord2@127.0.0.1", True)])
    assert room.count("ping_delivered") == 2


@pytest.mark.parametrize("arrives", ["after", "meanwhile"])
def test_a_ping_waiting_when_the_bot_stops_is_delivered_once_after_it_starts(
    people: People, ngircd: NgircdServer, db_url: str, arrives: str
) -> None:
    """hr_coord2 comes back once the bot is up again, or while it is down: then the bot
    finds them in the channel when it joins (its WHO of the channel)."""
    backend = "pg" if db_url.startswith("postgresql") else "sq"
    with room_for(people, f"hrstop_{backend}_{arrives[0]}", db_url) as room:
        with BotThread(room.config(ngircd)):
            ready_while_coord2_is_away(room, people)
        people.coord1.expect(command="QUIT", source=room.nick)  # its nick is free again
        if arrives == "meanwhile":
            people.coord2.join(room.channel)
        with BotThread(room.config(ngircd)) as bot:
            assert bot.bot.network.own_nick == room.nick
            coord2_arrives_and_is_pinged_once(room, people, joined=arrives == "meanwhile")


def test_a_ping_waiting_when_the_bot_is_killed_is_delivered_once_after_it_starts(
    people: People, ngircd: NgircdServer, db_url: str, tmp_path: Path
) -> None:
    backend = "pg" if db_url.startswith("postgresql") else "sq"
    with room_for(people, f"hrkill_{backend}", db_url) as room:
        people.coord1.join(room.channel)
        with BotProcess(room.config(ngircd), workdir=tmp_path / "bot") as bot:
            people.coord1.expect(command="JOIN", source=room.nick, timeout=15)
            people.coord1.part(room.channel)
            ready_while_coord2_is_away(room, people)
            bot.kill()
            people.coord1.expect(command="QUIT", source=room.nick)
            bot.start()
            people.coord1.expect(command="JOIN", source=room.nick, timeout=15)
            coord2_arrives_and_is_pinged_once(room, people)
            assert "Traceback" not in bot.log_text()


# -- the clock -------------------------------------------------------------------------------------
def test_sla_reminders_and_the_idle_close_run_on_the_clock(
    people: People, ngircd: NgircdServer, db_url: str
) -> None:
    backend = "pg" if db_url.startswith("postgresql") else "sq"
    coordinators = (people.coord1, people.coord2)
    with room_for(people, f"hrtime_{backend}", db_url) as room:
        clock = ShiftClock()
        with BotThread(room.config(ngircd), clock=clock) as bot:

            def timers_after(**delta: float) -> None:
                clock.advance(**delta)
                bot.run_jobs()

            join_all(room, list(people.clients.values()))
            assert room.said(people.t1, "!newhelper") == WELCOMED
            room.said(people.helper1, "!vouch hr_t1")
            room.said(people.helper2, "!vouch hr_t1")
            for coordinator in coordinators:
                assert room.private(coordinator, "ready") == ping("hr_t1", "hr_helper1, hr_helper2")

            # The promise is 24 hours: nothing a minute before, a reminder at 24h.
            reminder = f"Reminder: {named('hr_t1')} has been ready for {{}}, past the 24h promise. "
            reminder += "Say !promote hr_t1 (or !hold hr_t1 <why>)"
            timers_after(hours=23, minutes=59)
            room.nothing_more(coordinators, "Reminder")
            timers_after(minutes=1)
            for coordinator in coordinators:
                assert room.private(coordinator, "Reminder") == reminder.format("24h")
            assert room.said(people.coord1, "!ready") == (
                f"1 ready for promotion, 1 overdue: {named('hr_t1')} 2/2 by hr_helper1, "
                "hr_helper2; no chat account; waiting 24h OVERDUE"
            )
            registered = room.query(lambda s: s.scalar(select(Attempt.registered_at)))
            assert room.said(people.coord2, "!ready hr_t1") == (
                f"{named('hr_t1')} 2/2 by hr_helper1, hr_helper2; no chat account; "
                "waiting 24h OVERDUE; "
                f"registered {stamp(registered)}"
            )
            assert room.said(people.helper1, "!status hr_t1") == (
                "hr_t1 is ready for 24h, OVERDUE, 2/2 vouches: hr_helper1, hr_helper2; "
                "waiting for a coordinator"
            )
            # Again every 12 hours, once each time, until someone acts.
            timers_after(hours=11, minutes=59)
            room.nothing_more(coordinators, "Reminder")
            timers_after(minutes=1)
            bot.run_jobs()  # a second run at the same time reminds nobody again
            for coordinator in coordinators:
                assert room.private(coordinator, "Reminder") == reminder.format("36h")
            room.nothing_more(coordinators, "Reminder")
            assert room.count("sla_reminder") == 2
            assert room.said(people.coord2, "!promote hr_t1") == (
                "hr_t1 is now a helper; they have been told"
            )
            timers_after(hours=48)
            room.nothing_more(coordinators, "Reminder")

            # A trainee nobody vouches for: reminded once after 14 days, closed 14 days later.
            assert room.said(people.t2, "!newhelper") == WELCOMED
            timers_after(days=13, hours=23)
            room.nothing_more([people.t2], "No helper")
            timers_after(hours=1)
            bot.run_jobs()
            assert room.private(people.t2, "No helper") == (
                "No helper has vouched for you in 14 days. Still learning? Ask in the channel "
                "to shadow chats; without a vouch in 14 days your training closes."
            )
            room.nothing_more([people.t2], "No helper")
            timers_after(days=13, hours=23)
            room.nothing_more([people.t2], "closed")
            assert room.said(people.t2, "!status") == (
                "you are in training for 27d 23h, 0/2 vouches: none yet"
            )
            timers_after(hours=1)
            assert room.private(people.t2, "closed") == (
                "Your training closed after a long time without vouches: "
                "say !newhelper to come back."
            )
            assert room.said(people.t2, "!status") == (
                "you are not in training: closed 0m ago (idle: no vouch for 28 days); "
                "!newhelper starts afresh"
            )
            assert room.said(people.t2, "!newhelper") == (
                WELCOMED.replace("welcome!", "welcome back!")
            )
            assert [room.count(k) for k in ("idle_reminder", "closed")] == [1, 1]
            # Promoted: no reminder since, in all that time.
            room.nothing_more(coordinators, "Reminder")

"""Escaping a hold or a rejection: a trainee starts afresh, the coordinators still know.

The attack: a trainee on hold says ``!withdraw``, then ``!newhelper``, gathers two fresh
vouches, and the coordinators are pinged about what looks like a clean newcomer. Or a
rejected trainee does the same. The hold was a coordinator's judgement; it must follow the
person. What the bot must do:

- the withdrawn attempt keeps its hold (reason, by whom) and ``!status`` of it says so;
- the new attempt carries the latest hold or rejection into the ready ping, the SLA
  reminder, each ``!ready`` line and ``!status``: "previously on hold: <reason> (by X,
  date; withdrew date)", "previously rejected: <reason> (by X, date)";
- a hold a coordinator lifted (``!unhold``) is no warning, and neither is a plain withdrawal.

First on a real ngircd in hostmask mode (the bot in this process, on SQLite and on
PostgreSQL), then the rules themselves on both databases, with the query's cost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ircbot_plugins.livechat import views
from ircbot_plugins.livechat.config import DEFAULT_WELCOME
from ircbot_plugins.livechat.models import Attempt, Event, Person
from ircbot_plugins.livechat.past import LINE_BYTES, past_of
from ircbot_plugins.livechat.timers import run_timers
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests.livechat.conftest import Team
from tests.support.botthread import BotThread, ShiftClock, bot_config
from tests.support.client import IRCTestClient
from tests.support.ngircd import NgircdServer
from tests.support.postgres import BACKENDS, database_url

pytestmark = pytest.mark.timeout(90)

IDENTS = {"he_t": "het", "he_r": "her", "he_h1": "heh1", "he_h2": "heh2", "he_c": "hec"}
LIVECHAT = {
    "threshold": 2,
    "helpers": ["*!~heh1@127.0.0.1", "*!~heh2@127.0.0.1"],
    "coordinators": ["*!~hec@127.0.0.1"],
}
WELCOME_BACK = (
    f"welcome back! You are now a trainee; 2 helpers' vouches make you ready. {DEFAULT_WELCOME}"
)
HOLD = "argued with a user in a live chat"
REJECT = "shared a user's address in the channel"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path, "escape")


class Room:
    """The bot in its own channel, everyone in it, and a look at the bot's database."""

    def __init__(self, bot: BotThread, server: NgircdServer, channel: str) -> None:
        self.bot, self.channel, self.nick = bot, channel, bot.bot.config.irc.nick
        self.clients = {
            nick: IRCTestClient.connect(server.host, server.port, nick, user=ident)
            for nick, ident in IDENTS.items()
        }
        for client in self.clients.values():
            client.join(channel)

    def __getitem__(self, nick: str) -> IRCTestClient:
        return self.clients[nick]

    def said(self, nick: str, text: str) -> str:
        """``nick`` says ``text`` in the channel; the bot's answer there, minus ``nick: ``."""
        client = self.clients[nick]
        client.say(self.channel, text)
        prefix = f"{nick}: "
        reply = client.expect(rf"^{re.escape(prefix)}", source=self.nick, target=self.channel)
        return reply.text[len(prefix) :]

    def announced(self, nick: str, text: str) -> None:
        """The bot said exactly ``text`` in the channel, as ``nick`` saw it."""
        client = self.clients[nick]
        client.expect(rf"^{re.escape(text)}$", source=self.nick, target=self.channel)

    def private(self, nick: str, pattern: str | None = None) -> str:
        return self.clients[nick].expect(pattern, source=self.nick, target=nick).text

    def query(self, fn: Callable[[Session], Any]) -> Any:
        return self.bot.query(fn)

    def close(self) -> None:
        for client in self.clients.values():
            client.quit(timeout=1)


@contextlib.contextmanager
def room_for(ngircd: NgircdServer, db_url: str, name: str) -> Iterator[Room]:
    backend = "pg" if db_url.startswith("postgresql") else "sq"
    nick = f"{name}_{backend}"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        db_url,
        irc={"nick": nick, "channels": [f"#{nick}"]},
        bot={"plugins": ["livechat"], "user_burst": 1000, "user_rate": 100.0},
        livechat=LIVECHAT,
    )
    with BotThread(config, clock=ShiftClock()) as bot:
        room = Room(bot, ngircd, f"#{nick}")
        try:
            yield room
        finally:
            room.close()


def first_attempt(session: Session, ident: str) -> tuple[str, str | None, str | None]:
    """(state, hold reason, held by whom) of the first attempt of ``~ident@127.0.0.1``."""
    person = session.scalar(select(Person).where(Person.identity == f"~{ident}@127.0.0.1"))
    attempt = session.scalar(
        select(Attempt).where(Attempt.person_id == person.id).order_by(Attempt.id).limit(1)
    )
    return attempt.state, attempt.hold_reason, attempt.held_by.name if attempt.held_by else None


def day(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d}"


# -- on a real server --------------------------------------------------------------------------
def test_withdrawing_from_a_hold_and_starting_afresh_does_not_hide_the_hold(
    ngircd: NgircdServer, db_url: str
) -> None:
    with room_for(ngircd, db_url, "hescape") as room:
        room.said("he_t", "!newhelper")
        assert room.said("he_h1", "!vouch he_t") == "vouched for he_t: 1/2, training"
        assert room.said("he_c", f"!hold he_t {HOLD}") == f"he_t is on hold: {HOLD}"
        assert room.said("he_t", "!withdraw") == (
            "you have left training (withdrawn); say !newhelper to come back any time"
        )
        # The withdrawn attempt keeps the hold on record, and says so.
        assert room.query(lambda s: first_attempt(s, "het")) == ("withdrawn", HOLD, "he_c")
        assert room.said("he_h2", "!status he_t") == (
            f"he_t is not in training: withdrawn 0m ago (withdrew), while on hold by he_c: "
            f"{HOLD}; !newhelper starts afresh"
        )
        held_at, withdrew_at = room.query(
            lambda s: (
                s.scalar(select(Event.at).where(Event.kind == "held")),
                s.scalar(select(Event.at).where(Event.kind == "withdrawn")),
            )
        )
        detail = room.query(
            lambda s: s.scalar(select(Event.detail).where(Event.kind == "withdrawn"))
        )
        assert detail == f"withdrew (while on hold by he_c: {HOLD})"

        # Afresh: two fresh vouches make the new attempt ready, and the ping says it all.
        assert room.said("he_t", "!newhelper") == WELCOME_BACK
        earlier = (
            f"previously on hold: {HOLD} (by he_c, {day(held_at)}; withdrew {day(withdrew_at)})"
        )
        assert room.said("he_h2", "!status he_t") == (
            f"he_t is in training for 0m, 0/2 vouches: none yet; {earlier}"
        )
        room.said("he_h1", "!vouch he_t")
        assert room.said("he_h2", "!vouch he_t") == (
            "vouched for he_t: 2/2, ready; coordinators are pinged"
        )
        room.announced("he_c", "he_c: he_t is ready for promotion (2/2).")
        ping = room.private("he_c", "ready for promotion")
        assert ping == (
            "he_t (~het@127.0.0.1) is ready for promotion (2 vouches: he_h1, he_h2). "
            f"{earlier}. Say !promote he_t"
        )
        assert room.said("he_c", "!ready") == (
            "1 ready for promotion, 0 overdue: he_t (~het@127.0.0.1) 2/2 by he_h1, he_h2; "
            f"no chat account; waiting 0m; {earlier}"
        )
        detailed = room.said("he_c", "!ready he_t")
        assert detailed.startswith(
            f"he_t (~het@127.0.0.1) 2/2 by he_h1, he_h2; no chat account; "
            f"waiting 0m; {earlier}; registered "
        )
        assert room.said("he_h1", "!status he_t") == (
            "he_t is ready for 0m, 2/2 vouches: he_h1, he_h2; waiting for a coordinator; " + earlier
        )
        # Past the promise, the reminder carries it too.
        room.bot.clock.advance(hours=24)
        room.bot.run_jobs()
        assert room.private("he_c", "^Reminder") == (
            "Reminder: he_t (~het@127.0.0.1) has been ready for 24h, past the 24h promise. "
            f"{earlier}. Say !promote he_t (or !hold he_t <why>)"
        )


def test_a_rejected_trainee_who_starts_afresh_is_pinged_with_the_rejection(
    ngircd: NgircdServer, db_url: str
) -> None:
    with room_for(ngircd, db_url, "hereject") as room:
        room.said("he_r", "!newhelper")
        assert room.said("he_c", f"!reject he_r {REJECT}") == (
            f"he_r's training is closed (rejected): {REJECT}"
        )
        rejected_at = room.query(lambda s: s.scalar(select(Attempt.closed_at)))
        assert room.said("he_r", "!newhelper") == WELCOME_BACK
        room.said("he_h1", "!vouch he_r")
        room.said("he_h2", "!vouch he_r")
        room.announced("he_c", "he_c: he_r is ready for promotion (2/2).")
        earlier = f"previously rejected: {REJECT} (by he_c, {day(rejected_at)})"
        assert room.private("he_c", "ready for promotion") == (
            "he_r (~her@127.0.0.1) is ready for promotion (2 vouches: he_h1, he_h2). "
            f"{earlier}. Say !promote he_r"
        )
        assert room.said("he_h1", "!status he_r").endswith(f"; {earlier}")


# -- the rules, on both databases ---------------------------------------------------------------
def pings(team: Team) -> set[str]:
    return {p.text for p in team.outbox("ping")}


def test_the_hold_follows_through_several_fresh_attempts(team: Team) -> None:
    """Withdrawing again, without a hold, does not wash the earlier hold away."""
    team.register("alice")
    team.hold("carol", "alice", HOLD)
    team.withdraw("alice")
    team.register("alice")
    team.withdraw("alice")  # a plain withdrawal: not on hold
    team.register("alice")
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    today = day(team.clock.now())
    assert pings(team) == {
        "alice (account:alice) is ready for promotion (2 vouches: bob, erin). "
        f"previously on hold: {HOLD} (by carol, {today}; withdrew {today}). Say !promote alice"
    }


def test_a_lifted_hold_and_a_plain_withdrawal_are_no_warning(team: Team) -> None:
    team.register("alice")
    team.hold("carol", "alice", HOLD)
    team.unhold("dave", "alice")  # a coordinator lifted it
    team.withdraw("alice")
    team.register("alice")
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    assert pings(team) == {
        "alice (account:alice) is ready for promotion (2 vouches: bob, erin). Say !promote alice"
    }
    with team.unit() as u:
        assert past_of(u.session, [team.who(u, "alice").id]) == {}


def test_a_rejection_after_a_hold_is_what_the_next_attempt_shows(team: Team) -> None:
    team.register("alice")
    team.hold("carol", "alice", HOLD)
    team.reject("dave", "alice", REJECT)
    team.register("alice")
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    (text,) = pings(team)
    assert f"previously rejected: {REJECT} (by dave, {day(team.clock.now())})" in text
    assert "on hold" not in text


def test_a_long_reason_is_clipped_so_the_ping_and_the_reminder_stay_one_line(team: Team) -> None:
    reason = "é" * 300  # two bytes each: 600 bytes
    team.register("alice", "c" * 200)
    team.hold("carol", "alice", reason)
    team.withdraw("alice")
    team.register("alice", "c" * 200)
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    team.clock.advance(hours=24)
    with team.unit() as u:
        assert run_timers(u).reminded
    texts = [m.text for m in team.outbox("ping") + team.outbox("sla_reminder")]
    assert len(texts) == 4  # two coordinators, a ping and a reminder each
    for text in texts:
        assert len(text.encode()) <= LINE_BYTES, text
        assert "previously on hold: éé" in text and "…" in text
        assert text.endswith("Say !promote alice") or text.endswith("!hold alice <why>)")


def test_the_earlier_attempts_cost_one_query_for_a_whole_ready_list(team: Team) -> None:
    """!ready lists up to a page of trainees: their records come in one statement."""
    for name in ("alice", "gwen", "hank"):
        team.add(name)
        team.register(name)
        team.reject("carol", name, REJECT)
        team.register(name)
        team.vouch("bob", name)
        team.vouch("erin", name)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(team.db.engine, "before_cursor_execute", count)
    try:
        with team.unit() as u:
            people = [team.who(u, n).id for n in ("alice", "gwen", "hank")]
            statements.clear()
            found = past_of(u.session, people)
            assert len(statements) == 1
            assert {p.state for p in found.values()} == {"rejected"} and len(found) == 3
            total, _, listed = views.ready_list(u.session, team.rules, u.now, 20)
            assert total == 3 and all(v.past is not None for v in listed)
    finally:
        event.remove(team.db.engine, "before_cursor_execute", count)


def test_the_lookup_walks_an_index_not_the_table(team: Team) -> None:
    if team.db.backend != "sqlite":
        pytest.skip("the plan is read with SQLite's EXPLAIN QUERY PLAN")
    """For a page of people (!ready's 20), not only one: with ``person_id IN (...) GROUP BY``
    SQLite chose to walk every closed attempt by the state index instead."""
    names = [f"t{i:02}" for i in range(20)]
    for name in names:
        team.add(name)
        team.register(name)
        team.reject("carol", name, REJECT)
    with team.unit() as u:
        people = [team.who(u, name).id for name in names]
        statements: list[tuple[str, Any]] = []

        def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
            statements.append((statement, parameters))

        event.listen(team.db.engine, "before_cursor_execute", keep)
        try:
            assert len(past_of(u.session, people)) == 20
        finally:
            event.remove(team.db.engine, "before_cursor_execute", keep)
        ((statement, parameters),) = statements
        plan = u.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        details = [row[-1] for row in plan]
    assert not [d for d in details if re.match(r"SCAN (attempts|earlier|audit_events|people)\b", d)]
    assert any("ix_attempts_person_id_id" in d for d in details), details

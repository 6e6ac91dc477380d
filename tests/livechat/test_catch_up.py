"""Whoever becomes a coordinator hears, once, who already awaits promotion; and a masked
coordinator becomes one when the bot sees them, before they say a word. On SQLite and
PostgreSQL.

The team (see conftest): coordinators carol and dave, helpers bob, erin and frank; the
threshold is 2 vouches. The ready pings go to the coordinators of that moment, so a new
coordinator gets one message naming the trainees already waiting (outbox kind and audit
event ``catch_up``), never a ping per trainee again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ircbot_plugins.livechat import commands
from ircbot_plugins.livechat.config import LivechatConfig
from ircbot_plugins.livechat.models import Person
from ircbot_plugins.livechat.roles import Role
from ircbot_plugins.livechat.store import person_by_key
from sqlalchemy import func, select

from ircbot.casemapping import CaseMapping
from ircbot.clock import ManualClock
from ircbot.context import JobContext
from ircbot.identity import Identity
from ircbot.identity_policy import HostmaskPolicy
from ircbot.network import NetworkState

from .conftest import Database, Team

COORDINATORS = ["carol", "dave"]


def make_ready(team: Team, name: str, vouchers: tuple[str, str] = ("bob", "erin")) -> None:
    team.register(name)
    for voucher in vouchers:
        team.vouch(voucher, name)


def catch_ups(team: Team) -> list[tuple[str, str]]:
    """(recipient, text) of every catch-up message, delivered or not."""
    return [(m.recipient, m.text) for m in team.outbox("catch_up", pending=False)]


# -- !coordinator add and the CLI (the same rule) ----------------------------------------------
def test_a_new_coordinator_is_told_once_who_already_awaits_promotion(team: Team) -> None:
    make_ready(team, "alice")
    team.clock.advance(hours=1)
    make_ready(team, "gwen", ("erin", "frank"))
    team.register("hank")  # in training: not waiting for promotion
    team.change_role("carol", "helper", "add", "hank")  # a helper is not told
    assert catch_ups(team) == []
    team.change_role("carol", "coordinator", "add", "bob")
    assert catch_ups(team) == [("bob", "2 trainees await promotion: alice, gwen — say !ready")]
    (event,) = team.events("catch_up")
    assert (event.actor.name, event.detail) == ("carol", "alice, gwen")
    # One message, no ping per trainee: the pings went to the coordinators of the moment.
    assert sorted(p.recipient for p in team.outbox("ping")) == sorted(COORDINATORS * 2)
    team.change_role(None, "coordinator", "add", "frank")  # the CLI: actor None
    assert catch_ups(team)[-1] == ("frank", "2 trainees await promotion: alice, gwen — say !ready")
    assert team.events("catch_up")[-1].actor is None


def test_nobody_ready_nothing_to_catch_up(team: Team) -> None:
    team.register("alice")
    team.vouch("bob", "alice")
    team.change_role("carol", "coordinator", "add", "bob")
    assert catch_ups(team) == [] and team.events("catch_up") == []


def test_the_catch_up_leaves_out_whom_the_change_itself_made_ready(team: Team) -> None:
    """bob's vouch counts again once he is back on the team: alice is ready by that change,
    and bob is pinged about her like every coordinator; the catch-up names only gwen."""
    make_ready(team, "alice")
    team.change_role("carol", "helper", "remove", "bob")
    assert team.state("alice") == "training"
    make_ready(team, "gwen", ("erin", "frank"))
    change = team.change_role("carol", "coordinator", "add", "bob")
    assert [(t.person.name, state) for t, state in change.moved] == [("alice", "ready")]
    alice_pings = [p.recipient for p in team.outbox("ping") if p.text.startswith("alice ")]
    assert sorted(alice_pings) == ["bob", "carol", "dave"]
    assert catch_ups(team) == [("bob", "1 trainee awaits promotion: gwen — say !ready")]


def test_a_long_wait_list_is_named_in_part(team: Team) -> None:
    for i in range(12):
        make_ready(team, f"t{i:02}")
        team.clock.advance(minutes=1)
    team.change_role("carol", "coordinator", "add", "bob")
    names = ", ".join(f"t{i:02}" for i in range(10))
    assert catch_ups(team) == [
        ("bob", f"12 trainees await promotion: {names} and 2 more — say !ready")
    ]


# -- the account seed at start -------------------------------------------------------------------
class Network:
    """What a handler sees of the network: nobody present, ngircd's ascii casemapping."""

    home_channel = "#livechat"
    mapping = CaseMapping.from_name("ascii")

    def fold(self, name: str) -> str:
        return self.mapping.fold(name)

    def match(self, mask: str, value: str) -> bool:
        return self.mapping.match(mask, value)

    def nick_of(self, key: str) -> str | None:
        return None

    def is_reachable(self, key: str) -> bool:
        return False


def job_context(team: Team, factory: Any = None, memory: dict | None = None) -> JobContext:
    return JobContext(
        session_factory=factory or team.db.factory,
        config=team.rules,
        clock=team.clock,
        network=Network(),
        memory={} if memory is None else memory,
    )


def start(team: Team) -> None:
    """The plugin's start handler, as the bot runs it: one transaction."""
    ctx = job_context(team)
    commands.seed_roles(ctx)
    ctx.finish(commit=True)


def test_an_account_seed_raises_and_catches_up_once_and_a_restart_does_nothing(
    team: Team,
) -> None:
    make_ready(team, "alice")
    team.rules = LivechatConfig(threshold=2, coordinators=["Gina"], helpers=["bob"])
    start(team)
    assert team.role("gina") == Role.COORDINATOR
    assert catch_ups(team) == [("gina", "1 trainee awaits promotion: alice — say !ready")]
    start(team)  # the next start: the role is there, nothing rises, nobody is told again
    start(team)
    assert catch_ups(team) == [("gina", "1 trainee awaits promotion: alice — say !ready")]
    with team.unit() as u:
        gina = person_by_key(u.session, "gina").id
    assert [e.detail for e in team.events("role") if e.person_id == gina] == [
        "none -> coordinator (config)"
    ]
    assert len(team.events("catch_up")) == 1


# -- a config mask, when the bot sees someone ----------------------------------------------------
def no_database() -> Any:
    raise AssertionError("the database was used")


def connection_of(rules: LivechatConfig) -> Callable[[str, str], Identity]:
    """Who ``nick`` connecting as ``~ident@host`` is, as the bot's hostmask policy decides."""
    network = NetworkState()
    network.set_casemapping("ascii")
    policy = HostmaskPolicy(network, commands.role_masks(rules))

    def at(nick: str, ident: str) -> Identity:
        identity = policy.sender(nick, f"~{ident}", "host", {}).identity
        assert identity is not None
        return identity

    return at


def test_a_masked_coordinator_seen_is_on_the_team_and_caught_up_once(
    db: Database, clock: ManualClock
) -> None:
    rules = LivechatConfig(threshold=2, coordinators=["*!~carol@*"], helpers=["*!~bob@*"])
    team = Team(db, clock, rules)
    memory: dict[str, Any] = {}
    at = connection_of(rules)

    def seen(identity: Identity, factory: Any = None) -> JobContext:
        ctx = job_context(team, factory, memory)
        commands.seen(ctx, identity, identity.nick)
        ctx.finish(commit=True)
        return ctx

    def people() -> int:
        with team.unit() as u:
            return u.session.scalar(select(func.count()).select_from(Person))

    team.add("erin", Role.HELPER)
    seen(at("bob", "bob"))  # a helper by his mask, before he says a word
    make_ready(team, "alice", ("erin", "*!~bob@*"))  # bob *is* his mask entry
    assert people() == 3
    seen(at("zed", "zed"), no_database)  # matches no mask: not even a look at the database
    assert people() == 3
    ctx = seen(at("Carol_", "carol"))
    assert ctx.notified == {"*!~carol@*"}  # so that the bot delivers it at once
    with team.unit() as u:
        carol = person_by_key(u.session, "*!~carol@*")
        assert (carol.role, carol.role_manual, carol.last_nick) == (
            Role.COORDINATOR,
            False,
            "Carol_",
        )
    assert catch_ups(team) == [("*!~carol@*", "1 trainee awaits promotion: alice — say !ready")]
    seen(at("Carol_", "carol"), no_database)  # seen again in this run: remembered
    seen(at("carol", "carol"), no_database)  # under another nick too
    memory.clear()  # a restart: one look at the database, and nothing to do
    seen(at("carol", "carol"))
    assert len(catch_ups(team)) == 1 and len(team.events("catch_up")) == 1

"""The trainee process's rules, on SQLite and PostgreSQL, one behaviour per test.

The team (see conftest): coordinators carol and dave, helpers bob, erin and frank. The
threshold is 2 vouches, the SLA 24 hours with reminders every 12, idle after 14 days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from types import SimpleNamespace

import pytest
from ircbot_plugins.livechat import admin, commands, views, workflow
from ircbot_plugins.livechat.backlog import ImportRowError, import_backlog, read_csv
from ircbot_plugins.livechat.config import LivechatConfig
from ircbot_plugins.livechat.models import Attempt, Person, Vouch
from ircbot_plugins.livechat.roles import Role
from ircbot_plugins.livechat.store import log_delivery, person_by_key, touch
from ircbot_plugins.livechat.team import seed_roles
from ircbot_plugins.livechat.timers import run_timers
from sqlalchemy import select

from ircbot.casemapping import CaseMapping
from ircbot.context import CommandContext
from ircbot.errors import Refusal
from ircbot.identity import Identity, Target
from ircbot.identity_policy import HostmaskPolicy
from ircbot.network import NetworkState
from ircbot.outbox import mark_delivered

from .conftest import Team

COORDINATORS = {"carol", "dave"}


def make_ready(team: Team, name: str = "alice") -> None:
    team.register(name)
    team.vouch("bob", name)
    team.vouch("erin", name)


# -- !newhelper ----------------------------------------------------------------------------------
def test_newhelper_makes_a_trainee_and_logs_it(team: Team) -> None:
    registration = team.register("alice", "alice_spark")
    assert registration.created and not registration.again
    assert registration.attempt.chat_account == "alice_spark"
    assert team.state("alice") == "training"
    assert team.role("alice") == Role.TRAINEE
    assert [e.kind for e in team.events("registered")] == ["registered"]


def test_saying_newhelper_again_creates_nothing(team: Team) -> None:
    first = team.register("alice")
    again = team.register("alice")
    assert not again.created
    assert again.attempt.id == first.attempt.id
    assert team.count(Attempt) == 1
    assert len(team.events("registered")) == 1


def test_helpers_and_coordinators_are_already_on_the_team(team: Team) -> None:
    with pytest.raises(workflow.AlreadyOnTeam, match="already a helper"):
        team.register("bob")
    with pytest.raises(workflow.AlreadyOnTeam, match="already a coordinator"):
        team.register("carol")
    assert team.count(Attempt) == 0


# -- !vouch --------------------------------------------------------------------------------------
def test_a_vouch_counts_and_the_trainee_is_told(team: Team) -> None:
    team.register("alice")
    result = team.vouch("bob", "alice", "great with upset users")
    assert (result.count, result.transition, result.repeat) == (1, None, False)
    (told,) = team.outbox("trainee")
    assert told.recipient == "alice" and "bob vouched for you (1/2)" in told.text
    assert team.outbox("ping") == []


def test_a_repeat_vouch_says_already_and_updates_the_note(team: Team) -> None:
    team.register("alice")
    team.vouch("bob", "alice", "first note")
    repeat = team.vouch("bob", "alice", "better note")
    assert repeat.repeat and repeat.count == 1
    with team.unit() as u:
        (vouch,) = u.session.scalars(select(Vouch)).all()
        assert vouch.note == "better note"


@pytest.mark.parametrize(
    ("voucher", "target", "error", "text"),
    [
        ("bob", "bob", workflow.WorkflowError, "can't vouch for yourself"),
        ("bob", "nobody", workflow.NotATrainee, "ask them to say !newhelper"),
        ("bob", "zoe", workflow.NotATrainee, "zoe is not a trainee"),
        (None, "alice", workflow.NotIdentified, "log in to services"),
        ("zoe", "alice", workflow.NotAllowed, "only helpers"),
    ],
)
def test_vouch_refusals_say_why(
    team: Team, voucher: str | None, target: str, error: type, text: str
) -> None:
    team.register("alice")
    team.add("zoe")  # known to the bot, never said !newhelper
    with pytest.raises(error, match=text):
        team.vouch(voucher, target)
    assert team.count(Vouch) == 0


def test_no_vouch_for_a_trainee_already_promoted(team: Team) -> None:
    make_ready(team)
    team.promote("carol", "alice")
    with pytest.raises(workflow.AlreadyPromoted, match="promoted by carol"):
        team.vouch("frank", "alice")


def test_the_vouch_that_reaches_the_threshold_pings_each_coordinator_once(team: Team) -> None:
    team.register("alice", "alice_spark")
    team.vouch("bob", "alice")
    result = team.vouch("erin", "alice")
    assert result.transition == "ready" and set(result.pinged) == COORDINATORS
    assert team.state("alice") == "ready"
    pings = team.outbox("ping")
    assert sorted(p.recipient for p in pings) == sorted(COORDINATORS)
    assert {p.text for p in pings} == {
        "alice (account:alice) is ready for promotion (2 vouches: bob, erin; "
        "chat account alice_spark). Say !promote alice"
    }
    assert "You are ready" in team.outbox("trainee")[-1].text
    team.vouch("frank", "alice")  # a third vouch: no second transition, no second ping
    assert len(team.outbox("ping")) == 2
    assert len(team.events("ready")) == 1


def test_unvouch_below_the_threshold_goes_back_to_training(team: Team) -> None:
    make_ready(team)
    result = team.unvouch("erin", "alice")
    assert (result.count, result.transition) == (1, "training")
    assert team.state("alice") == "training"
    assert team.outbox("ping") == []  # the pings were cancelled
    assert len(team.outbox("ping", pending=False)) == 2
    with pytest.raises(workflow.Nothing, match="not vouched"):
        team.unvouch("erin", "alice")


# -- !promote ------------------------------------------------------------------------------------
def test_promote_makes_a_helper_cancels_pings_and_tells_them(team: Team) -> None:
    make_ready(team)
    team.promote("carol", "alice")
    assert team.state("alice") == "promoted"
    assert team.role("alice") == Role.HELPER
    assert team.outbox("ping") == []
    assert "You are now a helper" in team.outbox("trainee")[-1].text
    team.register("zoe")
    assert team.vouch("alice", "zoe").count == 1  # a new helper may vouch


def test_a_second_promote_says_who_promoted_and_when(team: Team) -> None:
    make_ready(team)
    team.promote("carol", "alice")
    with pytest.raises(workflow.AlreadyPromoted, match=r"promoted by carol on 2026-01-01"):
        team.promote("dave", "alice")
    assert len(team.events("promoted")) == 1


def test_promote_refuses_a_trainee_not_ready(team: Team) -> None:
    team.register("alice")
    team.vouch("bob", "alice")
    with pytest.raises(workflow.WrongState, match=r"in training \(1/2 vouches\)"):
        team.promote("carol", "alice")
    with pytest.raises(workflow.NotAllowed):
        team.promote("bob", "alice")


def test_two_coordinators_promoting_at_once_one_wins(team: Team) -> None:
    make_ready(team)
    outcomes = race(team, [("carol", "promote"), ("dave", "promote")], "alice")
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, workflow.AlreadyPromoted)]
    assert len(wins) == 1 and len(losses) == 1, outcomes
    assert "promoted by" in str(losses[0])
    assert len(team.events("promoted")) == 1


# -- hold, reject, withdraw, start again -------------------------------------------------------
def test_hold_pauses_pings_and_promotion_and_unhold_resumes(team: Team) -> None:
    make_ready(team)
    team.hold("carol", "alice", "check her chat transcripts")
    assert team.state("alice") == "on_hold"
    assert team.outbox("ping") == []
    with pytest.raises(workflow.WrongState, match="on hold"):
        team.promote("dave", "alice")
    with pytest.raises(workflow.Nothing, match="already on hold"):
        team.hold("dave", "alice", "again")
    attempt, pinged = team.unhold("dave", "alice")
    assert attempt.state == "ready" and set(pinged) == COORDINATORS
    assert len(team.outbox("ping")) == 2


def test_reject_keeps_the_reason_and_newhelper_starts_afresh(team: Team) -> None:
    team.register("alice")
    team.vouch("bob", "alice")
    team.reject("carol", "alice", "never shadowed a chat")
    assert team.state("alice") == "rejected"
    assert team.role("alice") == Role.NONE
    with pytest.raises(workflow.NotATrainee):
        team.vouch("erin", "alice")
    again = team.register("alice")
    assert again.created and again.again
    with team.unit() as u:
        attempts = u.session.scalars(select(Attempt).order_by(Attempt.id)).all()
        assert [(a.state, a.close_reason) for a in attempts] == [
            ("rejected", "never shadowed a chat"),
            ("training", None),
        ]
        assert views.status(
            u.session, team.rules, u.now, team.subject(u, "alice"), me=False, prefix="!"
        ) == (
            "alice is in training for 0m, 0/2 vouches: none yet; "
            f"previously rejected: never shadowed a chat (by carol, {u.now:%Y-%m-%d})"
        )


def test_withdraw_closes_and_only_trainees_can(team: Team) -> None:
    team.register("alice")
    team.withdraw("alice")
    assert team.state("alice") == "withdrawn"
    with pytest.raises(workflow.NotATrainee, match="not in training"):
        team.withdraw("alice")
    assert team.register("alice").created


# -- the 24-hour promise and idle trainees -------------------------------------------------------
def timers(team: Team):
    with team.unit() as u:
        return run_timers(u)


def test_sla_reminds_coordinators_and_repeats_until_promotion(team: Team) -> None:
    make_ready(team)
    team.clock.advance(hours=23, minutes=59)
    assert timers(team).reminded == []
    team.clock.advance(minutes=1)
    assert len(timers(team).reminded) == 1
    first = team.outbox("sla_reminder")
    assert sorted(m.recipient for m in first) == sorted(COORDINATORS)
    assert "ready for 24h" in first[0].text
    with team.unit() as u:
        total, overdue, (view,) = views.ready_list(u.session, team.rules, u.now)
        assert (total, overdue) == (1, 1)
        assert view.overdue and "OVERDUE" in views.ready_line(view, u.now)
    team.clock.advance(hours=11)
    assert timers(team).reminded == []
    team.clock.advance(hours=1)
    assert len(timers(team).reminded) == 1
    assert len(team.outbox("sla_reminder")) == 2  # the undelivered first ones were replaced
    assert len(team.events("sla_reminder")) == 2
    team.promote("carol", "alice")
    assert team.outbox("sla_reminder") == []
    team.clock.advance(hours=48)
    assert timers(team).reminded == []


def test_by_default_the_first_reminder_comes_while_the_promise_can_still_be_kept(
    team: Team,
) -> None:
    team.rules = dataclasses.replace(team.rules, first_reminder_hours=12)
    make_ready(team)
    team.clock.advance(hours=11, minutes=59)
    assert timers(team).reminded == []
    team.clock.advance(minutes=1)
    assert len(timers(team).reminded) == 1
    (text,) = {m.text for m in team.outbox("sla_reminder")}
    assert "ready for 12h, the 24h promise runs out in 12h" in text
    with team.unit() as u:  # a reminder, but not yet overdue
        assert views.ready_list(u.session, team.rules, u.now)[1] == 0
    team.clock.advance(hours=12)
    assert len(timers(team).reminded) == 1
    (text,) = {m.text for m in team.outbox("sla_reminder")}
    assert "ready for 24h, past the 24h promise" in text
    assert LivechatConfig().first_reminder_hours == 12 < LivechatConfig().sla_hours


def test_an_idle_trainee_is_reminded_once_then_closed(team: Team) -> None:
    team.register("alice")
    team.clock.advance(days=14)
    assert len(timers(team).idle_reminded) == 1
    assert "No helper has vouched" in team.outbox("trainee")[-1].text
    team.clock.advance(days=13)
    report = timers(team)
    assert report.idle_reminded == [] and report.idle_closed == []
    team.clock.advance(days=1)
    assert len(timers(team).idle_closed) == 1
    assert team.state("alice") == "closed"
    assert "say !newhelper to come back" in team.outbox("trainee")[-1].text
    assert [e.kind for e in team.events() if e.kind.startswith(("idle", "closed"))] == [
        "idle_reminder",
        "closed",
    ]


def test_a_vouch_resets_the_idle_clock(team: Team) -> None:
    team.register("alice")
    team.clock.advance(days=14)
    timers(team)
    team.vouch("bob", "alice")
    team.clock.advance(days=14)
    report = timers(team)
    assert report.idle_closed == [] and len(report.idle_reminded) == 1


# -- roles -----------------------------------------------------------------------------------------
def test_removing_a_helper_keeps_their_vouches_on_record_but_not_counted(team: Team) -> None:
    make_ready(team)
    change = team.change_role("carol", "helper", "remove", "bob")
    assert change.new == Role.NONE
    assert [(t.person.name, state) for t, state in change.moved] == [("alice", "training")]
    assert team.state("alice") == "training"
    assert team.outbox("ping") == []
    with team.unit() as u:
        assert u.session.scalar(select(Vouch).where(Vouch.retracted_at.is_(None))) is not None
        status = views.status(
            u.session, team.rules, u.now, team.subject(u, "alice"), me=False, prefix="!"
        )
        assert "1/2 vouches" in status and "not counted: bob" in status
    change = team.change_role("carol", "helper", "add", "bob")  # back: the vouch counts again
    assert [state for _, state in change.moved] == ["ready"]
    assert len(team.outbox("ping")) == 2


def test_role_changes_refuse_what_makes_no_sense(team: Team) -> None:
    with pytest.raises(workflow.WrongState, match="is a coordinator"):
        team.change_role("carol", "helper", "remove", "dave")
    with pytest.raises(workflow.Nothing, match="already a helper"):
        team.change_role("carol", "helper", "add", "bob")
    team.change_role("carol", "coordinator", "remove", "dave")
    assert team.role("dave") == Role.HELPER
    with pytest.raises(workflow.WrongState, match="last coordinator"):
        team.change_role(None, "coordinator", "remove", "carol")
    with pytest.raises(workflow.NotAllowed):
        team.change_role("bob", "helper", "add", "frank")


def test_making_a_trainee_a_helper_ends_their_training_as_promoted(team: Team) -> None:
    team.register("alice")
    team.change_role("carol", "helper", "add", "alice")
    assert team.state("alice") == "promoted"
    assert team.role("alice") == Role.HELPER


def test_config_seeds_raise_roles_but_never_override_a_decision(team: Team) -> None:
    team.change_role("carol", "helper", "remove", "frank")  # by hand: frank stays out
    with team.unit() as u:
        seed_roles(u, {"frank": Role.HELPER, "gina": Role.COORDINATOR, "bob": Role.COORDINATOR})
    assert team.role("frank") == Role.NONE
    assert team.role("gina") == Role.COORDINATOR  # new people are created by their account
    assert team.role("bob") == Role.HELPER  # bob's role was set by hand in the fixture


def test_mask_grants_match_with_the_server_casemapping() -> None:
    rules = LivechatConfig(coordinators=["*!*@Staff.Example"], helpers=["h@*", "accountname"])
    network = NetworkState()
    network.set_casemapping("ascii")
    policy = HostmaskPolicy(network, commands.role_masks(rules))

    def grant(nick: str, user: str, host: str) -> Role:
        identity = policy.sender(nick, user, host, {}).identity
        assert identity is not None
        return commands.mask_grant(rules, identity)

    assert grant("Carol", "u", "staff.example") == Role.COORDINATOR
    assert grant("Bob", "h", "x") == Role.HELPER
    assert grant("accountname", "z", "x") == Role.NONE  # account names are not masks


# -- naming people by nick -----------------------------------------------------------------------
def fake_ctx(session) -> SimpleNamespace:
    fold = CaseMapping.from_name("rfc1459").fold
    return SimpleNamespace(session=session, network=SimpleNamespace(fold=fold))


def test_a_nick_names_its_holder_now_never_its_previous_owner(team: Team) -> None:
    team.register("alice")
    with team.unit() as u:
        touch(u, "alice", "Alice[away]", "alice{away}")  # alice then used this nick with the bot
    with team.unit() as u:
        ctx = fake_ctx(u.session)
        impostor = Identity("mallory", "ALICE{AWAY}", "m", "evil")
        taken = commands.subject(ctx, Target("ALICE{AWAY}", impostor, online=True))
        assert taken.person is None  # mallory holds alice's old nick: not the trainee
        with pytest.raises(workflow.NotATrainee):
            workflow.vouch(u, person_by_key(u.session, "bob"), taken)
        renamed = Identity("alice", "alice_", "a", "home")
        found = commands.subject(ctx, Target("alice_", renamed, online=True))
        assert found.person.identity == "alice"  # a new nick, the same person
        offline = commands.subject(ctx, Target("ALICE[AWAY]", None, online=False))
        assert offline.person.identity == "alice" and offline.label == "ALICE[AWAY] (offline)"
        assert workflow.vouch(u, person_by_key(u.session, "bob"), offline).count == 1


# -- races -----------------------------------------------------------------------------------------
def race(team: Team, actions: list[tuple[str, str]], name: str) -> list[object]:
    """Run the actions at the same instant on separate connections; outcomes in order."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[object] = [None] * len(actions)

    def act(i: int, actor: str, what: str) -> None:
        try:
            barrier.wait(timeout=10)
            with team.unit() as u:
                who, subject = team.who(u, actor), team.subject(u, name)
                fn = workflow.vouch if what == "vouch" else workflow.promote
                outcomes[i] = fn(u, who, subject)
        except Exception as exc:  # the loser's refusal is an outcome too
            outcomes[i] = exc

    threads = [
        threading.Thread(target=act, args=(i, actor, what))
        for i, (actor, what) in enumerate(actions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return outcomes


@pytest.mark.parametrize("round_", range(3))
def test_two_helpers_vouching_at_once_give_one_ready_and_one_ping_each(
    team: Team, round_: int
) -> None:
    team.register("alice")
    outcomes = race(team, [("bob", "vouch"), ("erin", "vouch")], "alice")
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert sorted(o.count for o in outcomes) == [1, 2]
    assert [o.transition for o in outcomes].count("ready") == 1
    assert team.state("alice") == "ready"
    assert len(team.events("ready")) == 1
    assert sorted(p.recipient for p in team.outbox("ping")) == sorted(COORDINATORS)


# -- the backlog import ----------------------------------------------------------------------------
BACKLOG = """account,nick,chat_account,signed_up,vouchers
paula,Paula,paula_spark,2008-01-20,bob;erin
quinn,Quinn,,2008-01-25,
"""


def test_backlog_import_uses_the_readiness_rule_and_tells_coordinators(team: Team) -> None:
    rows = read_csv(BACKLOG.splitlines(), hostmask=False)
    with team.unit() as u:
        report = import_backlog(u, rows)
    assert report.imported == ["Paula", "Quinn"] and report.ready == ["Paula"]
    assert team.state("paula") == "ready" and team.state("quinn") == "training"
    assert sorted(p.recipient for p in team.outbox("ping")) == sorted(COORDINATORS)
    backlog = team.outbox("backlog")
    assert len(backlog) == 2 and "2 people from the sign-up backlog" in backlog[0].text
    with team.unit() as u:
        stmt = select(Attempt).join(Attempt.person).where(Person.identity == "paula")
        paula = u.session.scalar(stmt)
        assert paula.registered_at == dt.datetime(2008, 1, 20, tzinfo=dt.UTC)


def test_a_bad_backlog_row_is_named_and_nothing_is_imported(team: Team) -> None:
    text = BACKLOG + "rita,Rita,,2008-01-26,zed\n"
    rows = read_csv(text.splitlines(), hostmask=False)
    with pytest.raises(ImportRowError, match=r"row 4: unknown helper 'zed'"), team.unit() as u:
        import_backlog(u, rows)
    assert team.count(Attempt) == 0
    assert team.outbox() == []
    with pytest.raises(ImportRowError, match="row 3: 2 fields"):
        read_csv(["account,nick,chat_account", "a,b,c", "x,y"], hostmask=False)
    with pytest.raises(ImportRowError, match="row 2: signed_up 'soon'"):
        read_csv(["account,signed_up", "a,soon"], hostmask=False)
    with pytest.raises(ImportRowError, match="hostmask mode needs user@host"):
        read_csv(["account", "alice"], hostmask=True)


# -- what people are shown -----------------------------------------------------------------------
def test_history_tells_the_timeline_with_actors_and_deliveries(team: Team) -> None:
    make_ready(team)
    with team.unit() as u:
        ping = team.outbox("ping")[0]
        assert mark_delivered(u.session, ping.id, u.now)
        log_delivery(u.session, u.session.get(type(ping), ping.id))
    team.promote("carol", "alice")
    with team.unit() as u:
        lines = views.history(u.session, person_by_key(u.session, "alice"))
    kinds = [line.split(" ")[4] for line in lines]
    assert kinds == ["registered", "vouched", "vouched", "ready", "ping_delivered", "promoted"]
    assert "vouched by erin" in lines[2] and "promoted by carol" in lines[-1]
    assert "ping_delivered by bot: to carol" in lines[4]


def test_the_trainee_list_pages(team: Team) -> None:
    team.rules = LivechatConfig(threshold=2, page_size=3)
    for i in range(7):
        team.register(f"t{i}")
    make_ready(team, "t6")
    with team.unit() as u:
        found, first, pages = views.trainees_page(u.session, team.rules, u.now, 1)
        assert (found["ready"], found["training"], pages) == (1, 6, 3)
        assert [v.nick for v in first] == ["t6", "t0", "t1"]
        _, last, _ = views.trainees_page(u.session, team.rules, u.now, 3)
        assert [v.nick for v in last] == ["t5"]


# -- the IRC handlers on a real database (the network is a stand-in) ---------------------------
class Network:
    """What the bot sees of the network: who is present (identity key -> nick)."""

    home_channel = "#livechat"

    def __init__(self, rules: LivechatConfig) -> None:
        self.mapping = CaseMapping.from_name("ascii")
        self.present: dict[str, str] = {}
        state = NetworkState()
        state.set_casemapping("ascii")
        self.policy = HostmaskPolicy(state, commands.role_masks(rules))

    def person_at(self, nick: str) -> Identity:
        """Who ``nick`` connecting as ``~nick@host`` is, as the bot's policy decides."""
        identity = self.policy.sender(nick, f"~{nick}", "host", {}).identity
        assert identity is not None
        return identity

    def fold(self, name: str) -> str:
        return self.mapping.fold(name)

    def match(self, mask: str, value: str) -> bool:
        return self.mapping.match(mask, value)

    def nick_of(self, key: str) -> str | None:
        return self.present.get(key)

    def is_reachable(self, key: str) -> bool:
        return key in self.present


def say(team: Team, network: Network, nick: str, handler, *args) -> list[str]:
    """``nick`` says a command in #livechat; the lines the bot sends, as ``target text``."""
    network.present[network.person_at(nick).key] = nick
    ctx = CommandContext(
        session_factory=team.db.factory,
        config=team.rules,
        clock=team.clock,
        network=network,
        nick=nick,
        sender=network.person_at(nick),
        channel="#livechat",
    )
    try:
        if getattr(handler, "role", None) is not None:
            assert commands.resolve_role(ctx, ctx.sender) >= handler.role
        handler(ctx, *args)
    except Refusal as refusal:
        ctx.finish_refused()  # as the dispatcher does: back to the checkpoint
        return [f"#livechat {nick}: {refusal}"]
    ctx.finish(commit=True)
    return [f"{line.target} {line.text}" for line in ctx.outgoing]


def target(network: Network, nick: str) -> Target:
    key = network.person_at(nick).key
    online = network.present.get(key) == nick
    return Target(nick, network.person_at(nick) if online else None, online)


def test_a_masked_coordinator_is_on_the_team_from_the_first_word(db, clock) -> None:
    rules = LivechatConfig(coordinators=["*!~carol@*"], helpers=["*!~bob@*", "*!~erin@*"])
    team, network = Team(db, clock, rules), Network(rules)
    assert say(team, network, "carol", commands.newhelper, None) == [
        "#livechat carol: you are already a coordinator on the team"
    ]
    lines = say(team, network, "alice", commands.newhelper, "alice_spark")
    assert lines[0].startswith("#livechat alice: welcome! You are now a trainee; 2 helpers'")
    assert lines[1] == "#livechat New trainee: alice. Helpers, invite them to shadow your chats!"
    assert say(team, network, "bob", commands.vouch, target(network, "alice"), "good") == [
        "#livechat bob: vouched for alice: 1/2, training"
    ]
    assert say(team, network, "erin", commands.vouch, target(network, "alice"), None) == [
        "#livechat erin: vouched for alice: 2/2, ready; coordinators are pinged",
        "#livechat carol: alice is ready for promotion (2/2).",
    ]
    assert [m.recipient for m in team.outbox("ping")] == [network.person_at("carol").key]
    network.present[network.person_at("zed").key] = "zed"  # online, never spoke to the bot
    assert say(team, network, "carol", admin.helper, "add", target(network, "zed")) == [
        "#livechat carol: zed is now a helper"
    ]
    assert team.role(network.person_at("zed").key) == Role.HELPER


def test_the_roles_doctests_hold() -> None:
    import doctest

    from ircbot_plugins.livechat import roles

    assert doctest.testmod(roles).failed == 0

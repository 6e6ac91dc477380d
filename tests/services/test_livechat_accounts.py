"""The trainee workflow in account mode on a real services network, in the three modes.

The bot runs the livechat plugin with ``[bot] identity = "account"`` and its team named by
account (``[livechat] helpers``/``coordinators``). Vouches, refusals and promotions are
checked against what services say about each person, never their nick: a helper vouches as
themself under any nick, someone holding a helper's or coordinator's nick without their
account gets nothing, a trainee is the same trainee after a nick change and after
reconnecting under another nick, and logging out counts at once. The coordinators' ping is
durable: a coordinator who is present but not logged in when a trainee becomes ready gets it
when they log in (``account-notify``), or, without account-notify, when the bot next sees
them.

Everyone connects once for the module (one InspIRCd tick); each mode has a fresh bot with a
fresh database on its own channel, and people join it after the bot. Tests run in file order
within a mode and tell one story: trainee 1 is registered, vouched for, made ready and
promoted; trainee 2 becomes ready while a coordinator is logged out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.services.botnet import LOGIN_FIRST, MODES, ServicesBot, start_bot
from tests.support.client import IRCTestClient, renamed
from tests.support.services import DEFAULT_CAPS, ServicesNetwork, Waker

pytestmark = [pytest.mark.services, pytest.mark.timeout(30)]

ACCOUNTS = {
    nick: f"pw-{nick}-7"
    for nick in (
        "wfbot",
        "wfhelper1",
        "wfhelper2",
        "wfcoord",
        "wfcoord2",
        "wftrainee1",
        "wftrainee2",
        "wfnobody",
    )
}
LIVECHAT = {
    "helpers": ["wfhelper1", "wfhelper2"],
    "coordinators": ["wfcoord", "wfcoord2"],
    "threshold": 2,
}


@dataclass
class People:
    """Module-wide connections; ``trainee1`` is replaced when it reconnects."""

    helper1: IRCTestClient
    helper2: IRCTestClient
    coord: IRCTestClient
    coord2: IRCTestClient
    trainee1: IRCTestClient
    trainee2: IRCTestClient
    nobody: IRCTestClient  # logged in as wfnobody, no role
    anon: IRCTestClient  # never logged in

    @property
    def all(self) -> list[IRCTestClient]:
        return list(vars(self).values())


@pytest.fixture(scope="module")
def people(services_network: ServicesNetwork, services_waker: Waker) -> Iterator[People]:
    clients = services_network.connect_accounts([*ACCOUNTS, "wfanon"], accounts=ACCOUNTS)
    clients.pop("wfbot").quit()
    group = People(*(clients[n] for n in list(ACCOUNTS)[1:]), anon=clients["wfanon"])
    try:
        yield group
    finally:
        for client in group.all:
            client.quit()


@pytest.fixture(scope="module", params=list(MODES))
def bot(
    request: pytest.FixtureRequest, services_network: ServicesNetwork, people: People
) -> Iterator[ServicesBot]:
    mode = request.param
    bot = start_bot(
        services_network,
        nick="wfbot",
        channel=f"#wf-{mode}",
        mode=mode,
        sasl=("wfbot", ACCOUNTS["wfbot"]),
        plugins=["livechat"],
        # Without account-notify a login is seen only by asking again (a WHOX of the channel
        # at each delivery sweep): sweep every second there, and at the default elsewhere,
        # so that the other modes prove the login itself delivers.
        sections={"livechat": LIVECHAT, "bot": {"away_poll": 1.0} if mode == "whois" else {}},
    )
    try:
        for client in people.all:
            client.join(bot.channel)
        yield bot
    finally:
        bot.stop()
        for client in people.all:
            client.drain()
            client.send_raw(f"PART {bot.channel}")


def ask(bot: ServicesBot, client: IRCTestClient, text: str, pattern: str = "") -> str:
    """Say ``text`` to the bot privately and return its private answer matching ``pattern``
    (durable messages for the same person, such as "X vouched for you", may come first)."""
    client.say(bot.nick, text)
    return bot.expect(client, pattern or None, target=client.current_nick)


def says(pattern: str, text: str) -> None:
    """Assert the bot's ``text`` states the facts in ``pattern`` (a case-insensitive regex).

    The livechat replies' wording may be polished; what a test holds on to is the facts in
    them: who, how many vouches of the threshold, which state.
    """
    assert re.search(pattern, text, re.IGNORECASE), f"{text!r} does not match {pattern!r}"


def ping_pattern(trainee_nick: str, account_name: str) -> str:
    """A coordinator's ping: the nick, the services account in the form ``!promote`` will
    take (``account:NAME``, whatever nick they use), and what to say."""
    nick = re.escape(trainee_nick)
    account = re.escape(f"account:{account_name}")
    return rf"^{nick} \({account}\) is ready for promotion\b.*!promote {nick}$"


# -- the story of trainee 1 ------------------------------------------------------------------------
def test_trainees_register_by_account(bot: ServicesBot, people: People) -> None:
    for trainee in (people.trainee1, people.trainee2):
        says(r"\byou are now a trainee\b.*\b2 helpers", ask(bot, trainee, "!newhelper"))
        bot.expect(people.helper1, rf"\b{re.escape(trainee.current_nick)}\b", target=bot.channel)
    assert ask(bot, people.anon, "!newhelper") == LOGIN_FIRST


def test_a_logged_in_helpers_vouch_counts(bot: ServicesBot, people: People) -> None:
    mark = bot.sent.mark()
    trainee = people.trainee1.current_nick
    reply = ask(bot, people.helper1, f"!vouch {trainee} shadowed two chats")
    says(rf"^vouched for {trainee}\b.*\b1/2\b.*\btraining\b", reply)
    bot.expect(people.trainee1, r"^wfhelper1 vouched for you\b.*1/2")
    # In whois mode the bot asked the server about the sender and the trainee named (and
    # again about the trainee before delivering their message); otherwise it knew.
    asked = set(bot.sent.since(mark, "WHOIS"))
    if bot.mode == "whois":
        assert asked == {"WHOIS " + trainee, "WHOIS wfhelper1"}, asked
    else:
        assert asked == set(), asked


def test_without_the_account_nobody_vouches_or_promotes(bot: ServicesBot, people: People) -> None:
    trainee = people.trainee1.current_nick
    assert ask(bot, people.anon, f"!vouch {trainee}") == LOGIN_FIRST
    with renamed(people.helper1, "wfhelper1-afk"), renamed(people.coord, "wfcoord-afk"):
        with renamed(people.anon, "wfhelper1"):
            assert ask(bot, people.anon, f"!vouch {trainee}") == LOGIN_FIRST
        with renamed(people.nobody, "wfhelper1"):
            assert ask(bot, people.nobody, f"!vouch {trainee}") == "!vouch is for helpers only."
        with renamed(people.anon, "wfcoord"):
            assert ask(bot, people.anon, "!ready") == LOGIN_FIRST
            assert ask(bot, people.anon, f"!promote {trainee}") == LOGIN_FIRST
        with renamed(people.nobody, "wfcoord"):
            reply = ask(bot, people.nobody, f"!promote {trainee}")
            assert reply == "!promote is for coordinators only."
    # None of it counted.
    says(rf"^{trainee} is in training\b.*\b1/2\b", ask(bot, people.helper2, f"!status {trainee}"))


def test_logging_out_takes_effect_at_once(bot: ServicesBot, people: People) -> None:
    helper, trainee = people.helper2, people.trainee2.current_nick
    helper.nickserv_logout()
    try:
        assert ask(bot, helper, f"!vouch {trainee}") == LOGIN_FIRST
    finally:
        helper.nickserv_identify("wfhelper2", ACCOUNTS["wfhelper2"])
    says(rf"^{trainee} is in training\b.*\b0/2\b", ask(bot, helper, f"!status {trainee}"))


def test_a_helper_who_changes_nick_vouches_as_themself(bot: ServicesBot, people: People) -> None:
    trainee = people.trainee1.current_nick
    with renamed(people.helper1, "wfhelper1-afk"):
        says(
            rf"^already vouched for {trainee}\b.*\b1/2\b",
            ask(bot, people.helper1, f"!vouch {trainee}"),
        )
    with renamed(people.helper2, "wfhelper2-afk"):
        reply = ask(bot, people.helper2, f"!vouch {trainee}")
        says(rf"^vouched for {trainee}\b.*\b2/2\b.*\bready\b", reply)
    # Both coordinators are logged in and present: pinged privately at once.
    for coordinator in (people.coord, people.coord2):
        ping = bot.expect(
            coordinator, ping_pattern(trainee, "wftrainee1"), target=coordinator.current_nick
        )
        assert "wfhelper1" in ping and "wfhelper2-afk" in ping, ping
    bot.expect(people.trainee1, r"^You are ready\b")


def test_a_trainee_is_found_after_a_nick_change_and_a_reconnect(
    bot: ServicesBot, people: People, services_network: ServicesNetwork
) -> None:
    with renamed(people.trainee1, "wftrainee1-x") as trainee:
        says(r"^you are ready\b.*\b2/2\b", ask(bot, trainee, "!status", "^you are"))
        says(r"^wftrainee1-x is ready\b", ask(bot, people.helper1, "!status wftrainee1-x"))
    # Reconnect under a nick this trainee has never used, logged in with SASL.
    people.trainee1.quit()
    nick = f"wft1-{bot.mode}"[:30]
    trainee = services_network.connect(
        nick, caps=DEFAULT_CAPS, account="wftrainee1", password=ACCOUNTS["wftrainee1"]
    )
    people.trainee1 = trainee
    trainee.join(bot.channel)
    says(r"^you are ready\b.*\b2/2\b", ask(bot, trainee, "!status", "^you are"))
    says(rf"^already vouched for {nick}\b.*\b2/2\b", ask(bot, people.helper1, f"!vouch {nick}"))
    says(rf"^{nick}\b.*wfhelper1", ask(bot, people.coord, f"!ready {nick}"))
    says(rf"^{nick} is now a helper\b", ask(bot, people.coord, f"!promote {nick}"))
    bot.expect(trainee, r"^You are now a helper\b.*\bwfcoord\b")


# -- the held ping -------------------------------------------------------------------------------
def test_the_held_ping_is_delivered_when_the_coordinator_logs_in(
    bot: ServicesBot, people: People
) -> None:
    """wfcoord2 is in the channel but logged out when trainee 2 becomes ready: nothing. Once
    they log in to services the ping arrives at once, carried by ``account-notify``; a bot
    without account-notify cannot see a login, and finds it at its next sweep (1 s here)."""
    trainee, late = people.trainee2.current_nick, people.coord2
    late.nickserv_logout()
    try:
        says(r"\b1/2\b.*\btraining\b", ask(bot, people.helper1, f"!vouch {trainee}"))
        says(r"\b2/2\b.*\bready\b", ask(bot, people.helper2, f"!vouch {trainee}"))
        bot.expect(
            people.coord, ping_pattern(trainee, "wftrainee2"), target=people.coord.current_nick
        )
        bot.expect_none(late)
    finally:
        late.nickserv_identify("wfcoord2", ACCOUNTS["wfcoord2"])
    bot.expect(late, ping_pattern(trainee, "wftrainee2"), target=late.current_nick, timeout=5)

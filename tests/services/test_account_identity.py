"""Account identity in the core, on a real services network, in the three ways to learn it.

No livechat here: a probe plugin defined below asks the dispatcher exactly the questions a
plugin asks (who is speaking, who holds that nick, may they use a role-gated command) and
says the answers. Every test runs once per mode of :data:`~tests.services.botnet.MODES`:
``full`` (the ``account`` tag on each line), ``no-account-tag`` (accounts tracked from
``extended-join`` and ``account-notify``) and ``whois`` (WHOIS 330 before acting).

People are connected once for the module (one InspIRCd tick): ``idhelper`` (logged in, the
probe's only helper), ``idother`` (logged in, no role), ``idleaver`` (logged in; logs out and
back in) and ``idanon`` (never logged in). For each mode a bot starts on its own channel and
only then do the people join it, so what the bot knows of them comes from their JOIN lines
(extended-join) and what follows, not from a WHO at its own join.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ircbot.context import CommandContext
from ircbot.identity import Identity, Target
from ircbot.plugin import Plugin
from tests.services.botnet import LOGIN_FIRST, MODES, ServicesBot, start_bot
from tests.support.client import IRCTestClient, renamed
from tests.support.services import ServicesNetwork, Waker

pytestmark = [pytest.mark.services, pytest.mark.timeout(30)]

PASSWORDS = {
    "idprobebot": "pw-idprobebot-1",
    "idhelper": "pw-idhelper-1",
    "idother": "pw-idother-1",
    "idleaver": "pw-idleaver-1",
}
HELPER_ROLE = 1

# -- the probe plugin ------------------------------------------------------------------------
probe = Plugin("probe")


@probe.roles(names=lambda role: "helper" if role == HELPER_ROLE else "nobody")
def _probe_role(ctx: CommandContext, identity: Identity) -> int:
    """Roles by account name, as ``[livechat] helpers`` gives them: only idhelper is one."""
    return HELPER_ROLE if identity.key == "idhelper" else 0


@probe.command("whoami", identified=True, help="Say the identity key the bot gives you.")
def _whoami(ctx: CommandContext) -> None:
    assert ctx.sender is not None  # identified=True: the dispatcher refuses before
    ctx.reply(f"you are {ctx.sender.key}")


@probe.command("maybe", help="Say who you are if the bot can tell; needs no identity.")
def _maybe(ctx: CommandContext) -> None:
    ctx.reply(f"you are {ctx.sender.key if ctx.sender else 'unknown'}")


@probe.command("who", usage="<who:nick>", help="Say who holds a nick now.")
def _who(ctx: CommandContext, target: Target) -> None:
    if target.identity is not None:
        ctx.reply(f"{target.nick} is {target.identity.key}")
    else:
        ctx.reply(f"{target.nick} is {'nobody' if target.online else 'offline'}")


@probe.command("secret", role=HELPER_ROLE, help="Only for helpers.")
def _secret(ctx: CommandContext) -> None:
    ctx.reply("granted")


# -- fixtures ----------------------------------------------------------------------------------
@dataclass
class People:
    helper: IRCTestClient
    other: IRCTestClient
    leaver: IRCTestClient
    anon: IRCTestClient

    @property
    def all(self) -> tuple[IRCTestClient, ...]:
        return (self.helper, self.other, self.leaver, self.anon)


@pytest.fixture(scope="module")
def people(services_network: ServicesNetwork, services_waker: Waker) -> Iterator[People]:
    """Register the accounts and connect everyone in one tick; the bot's account connection
    only registers ``idprobebot`` and leaves."""
    clients = services_network.connect_accounts([*PASSWORDS, "idanon"], accounts=PASSWORDS)
    clients.pop("idprobebot").quit()
    try:
        yield People(
            clients["idhelper"], clients["idother"], clients["idleaver"], clients["idanon"]
        )
    finally:
        for client in clients.values():
            client.quit()


@pytest.fixture(scope="module", params=list(MODES))
def bot(request: pytest.FixtureRequest, services_network: ServicesNetwork, people: People):
    """The probe bot in one mode, logged in with SASL, with everyone joined after it."""
    mode = request.param
    bot = start_bot(
        services_network,
        nick="idprobe",
        channel=f"#id-{mode}",
        mode=mode,
        sasl=("idprobebot", PASSWORDS["idprobebot"]),
        extra_plugins=[probe],
    )
    try:
        for client in people.all:
            client.join(bot.channel)
        yield bot
    finally:
        bot.stop()
        for client in people.all:
            client.drain()  # nothing left over for the next mode's expectations
            client.send_raw(f"PART {bot.channel}")


def assert_whois(bot: ServicesBot, mark: int, nicks: list[str]) -> None:
    """In ``whois`` mode the bot must have asked about ``nicks``; otherwise about no one."""
    sent = bot.sent.since(mark, "WHOIS")
    if bot.mode == "whois":
        assert sent == [f"WHOIS {nick}" for nick in nicks], sent
    else:
        assert sent == [], f"{bot.mode}: the bot should know accounts without WHOIS: {sent}"


# -- tests -------------------------------------------------------------------------------------
def test_the_bot_runs_in_its_mode_logged_in_with_sasl(bot: ServicesBot, people: People) -> None:
    """The mode really is what the bot negotiated, and the server sees the bot's account."""
    caps = bot.thread.call(lambda: set(bot.thread.bot.transport.caps))
    fallbacks = {"account-tag", "extended-join", "account-notify"}
    assert (
        caps & fallbacks
        == {
            "full": fallbacks,
            "no-account-tag": {"extended-join", "account-notify"},
            "whois": set(),
        }[bot.mode]
    )
    assert {"sasl", "away-notify"} <= caps
    # InspIRCd's bare ``WHOX`` token was understood: the join's WHO asked for accounts.
    assert f"WHO {bot.channel} %tnuhaf,42" in bot.sent.since(0, "WHO")
    people.other.send_raw(f"WHOIS {bot.nick}")
    logged_in = people.other.expect(command="330")
    assert logged_in.params[1:3] == [bot.nick, "idprobebot"]
    people.other.expect(command="318")


def test_the_account_is_the_identity(bot: ServicesBot, people: People) -> None:
    """A logged-in user is their account, in private and in the channel; in ``whois`` mode
    the bot asked the server first, in the other modes it already knew."""
    mark = bot.sent.mark()
    assert bot.ask(people.helper, "!whoami") == "you are idhelper"
    assert bot.ask_in_channel(people.helper, "!whoami") == "you are idhelper"
    assert bot.ask(people.helper, "!secret") == "granted"
    assert_whois(bot, mark, ["idhelper"] * 3)


def test_a_command_that_needs_no_identity_still_knows_the_sender(
    bot: ServicesBot, people: People
) -> None:
    """A handler may use who is asking even when the command doesn't require it (``!status``
    without a nick): the bot resolves the sender in every mode, by WHOIS if need be."""
    assert bot.ask(people.helper, "!maybe") == "you are idhelper"
    assert bot.ask(people.anon, "!maybe") == "you are unknown"


def test_not_logged_in_is_refused_and_told_to_log_in(bot: ServicesBot, people: People) -> None:
    assert bot.ask(people.anon, "!whoami") == LOGIN_FIRST
    assert bot.ask_in_channel(people.anon, "!secret") == LOGIN_FIRST
    # Commands that need no identity still work for them.
    assert bot.ask(people.anon, "!who idhelper") == "idhelper is idhelper"


def test_logged_in_without_the_role_is_refused(bot: ServicesBot, people: People) -> None:
    assert bot.ask(people.other, "!whoami") == "you are idother"
    assert bot.ask(people.other, "!secret") == "!secret is for helpers only."


def test_a_helper_who_changes_nick_is_still_themself(bot: ServicesBot, people: People) -> None:
    with renamed(people.helper, "idhelper-afk"):
        mark = bot.sent.mark()
        assert bot.ask(people.helper, "!whoami") == "you are idhelper"
        assert bot.ask(people.helper, "!secret") == "granted"
        assert_whois(bot, mark, ["idhelper-afk"] * 2)
        assert bot.ask(people.other, "!who idhelper-afk") == "idhelper-afk is idhelper"
        assert bot.ask(people.other, "!who idhelper") == "idhelper is offline"
    assert bot.ask(people.helper, "!whoami") == "you are idhelper"


def test_taking_a_helpers_nick_without_the_account_gives_nothing(
    bot: ServicesBot, people: People
) -> None:
    with renamed(people.helper, "idhelper-afk"):
        with renamed(people.anon, "idhelper"):
            assert bot.ask(people.anon, "!secret") == LOGIN_FIRST
            assert bot.ask(people.anon, "!whoami") == LOGIN_FIRST
            assert bot.ask(people.other, "!who idhelper") == "idhelper is nobody"
        with renamed(people.other, "idhelper"):  # logged in, but as someone else
            assert bot.ask(people.other, "!secret") == "!secret is for helpers only."
            assert bot.ask(people.other, "!whoami") == "you are idother"
            assert bot.ask(people.anon, "!who idhelper") == "idhelper is idother"
        assert bot.ask(people.anon, "!who idhelper-afk") == "idhelper-afk is idhelper"


def test_logging_out_takes_effect_at_once(bot: ServicesBot, people: People) -> None:
    """LOGOUT (``ACCOUNT *`` to the bot) and IDENTIFY (``ACCOUNT name``) count from the very
    next line: each is followed at once by a command, with no wait but the user's own 901/900."""
    leaver = people.leaver
    assert bot.ask(leaver, "!whoami") == "you are idleaver"
    leaver.nickserv_logout()
    try:
        assert bot.ask(leaver, "!whoami") == LOGIN_FIRST
        assert bot.ask(people.helper, "!who idleaver") == "idleaver is nobody"
    finally:
        leaver.nickserv_identify("idleaver", PASSWORDS["idleaver"])
    assert bot.ask(leaver, "!whoami") == "you are idleaver"
    assert bot.ask(people.helper, "!who idleaver") == "idleaver is idleaver"


def test_a_nick_nobody_holds_is_offline(bot: ServicesBot, people: People) -> None:
    mark = bot.sent.mark()
    assert bot.ask(people.helper, "!who idnosuchnick") == "idnosuchnick is offline"
    # Nobody the bot tracks holds it, so every mode asks the server about the nick (and, in
    # whois mode, about the sender, as for any command).
    expected = {"WHOIS idnosuchnick"} | ({"WHOIS idhelper"} if bot.mode == "whois" else set())
    assert set(bot.sent.since(mark, "WHOIS")) == expected

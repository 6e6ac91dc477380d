"""Waiting for WHOIS is bounded, and a command that needs to know who is asking never runs
on a guess.

A scripted server in account mode that offers no capabilities at all (no ``account-tag``,
no ``account-notify``): the bot can only learn an account by WHOIS, and this server never
answers one. After ``[bot] whois_timeout`` the asker gets one short "couldn't verify" reply,
and neither the handler of a command that needs an identity or a role nor the role resolver
ran. Commands declared for anyone (``!ping``, ``!help``) then run with no sender, as for
someone not logged in: that is what they were declared for, and ``!help`` lists no role
command to a sender it could not identify. A WHOIS in flight when the connection drops fails
at once, the same way.
"""

from __future__ import annotations

import threading
import time

import pytest

from ircbot.plugin import Plugin
from tests.support.botthread import BotThread, bot_config

pytestmark = pytest.mark.timeout(60)

WHOIS_TIMEOUT = 1.0
VERIFY = "I couldn't verify you just now; try again in a moment."


class Calls:
    """What the probe plugin's handlers and role resolver were called with (any thread)."""

    def __init__(self) -> None:
        self.handlers: list[tuple[str, object]] = []
        self.roles: list[object] = []
        self.ran = threading.Event()

    def record(self, name: str, sender: object) -> None:
        self.handlers.append((name, sender))
        self.ran.set()


calls = Calls()
probe = Plugin("whoisprobe")


@probe.roles(names=lambda role: {1: "coordinator"}[role])
def _role(ctx, identity) -> int:
    calls.roles.append(identity)
    return 1


@probe.command("secret", identified=True, help="Needs to know who is asking.")
def _secret(ctx) -> None:
    calls.record("secret", ctx.sender)
    ctx.reply(f"secret for {ctx.sender}")


@probe.command("boss", role=1, help="Coordinators only.")
def _boss(ctx) -> None:
    calls.record("boss", ctx.sender)
    ctx.reply("boss command ran")


@probe.command("anon", help="Anyone; records who it thought was asking.")
def _anon(ctx) -> None:
    calls.record("anon", ctx.sender)
    ctx.reply("anon ran")


@probe.command("lookup", usage="<who:nick>", help="Anyone; names someone else.")
def _lookup(ctx, who) -> None:
    calls.record("lookup", who)
    ctx.reply(f"looked up {who}")


@pytest.fixture
def server(scripted_server, tmp_path):
    """The bot registered in account mode on a server that offers no capabilities."""
    calls.__init__()
    config = bot_config(
        scripted_server.host,
        scripted_server.port,
        f"sqlite:///{tmp_path}/b.db",
        bot={"identity": "account", "whois_timeout": WHOIS_TIMEOUT, "user_burst": 20},
    )
    bot = BotThread(config, extra_plugins=[probe]).start(wait_joined=False)
    server = scripted_server
    server.register_bot()
    server.bot = bot
    yield server
    server.close_client()
    bot.stop()


def say(server, text: str, nick: str = "amy", target: str = "#livechat") -> None:
    server.send(f":{nick}!~{nick}@127.0.0.1 PRIVMSG {target} :{text}")


def timed_reply(server, regex: str, started: float) -> float:
    server.expect_line(regex, timeout=WHOIS_TIMEOUT + 3)
    return time.monotonic() - started


def assert_silent(server, within: float = 0.3) -> None:
    """No further line from the bot within ``within`` seconds (any line would match)."""
    with pytest.raises(AssertionError, match="none arrived"):
        server.expect_line(r"", timeout=within)


def test_an_identified_command_is_refused_when_whois_never_answers(server):
    started = time.monotonic()
    say(server, "!secret")
    server.expect_line(r"^WHOIS amy$")
    waited = timed_reply(server, rf"^PRIVMSG #livechat :amy: {VERIFY}$", started)
    assert WHOIS_TIMEOUT - 0.1 <= waited <= WHOIS_TIMEOUT + 1.5, waited
    assert calls.handlers == []
    assert_silent(server)


def test_a_role_command_is_refused_and_the_role_never_asked(server):
    started = time.monotonic()
    say(server, "!boss", target="lcbot")
    server.expect_line(r"^WHOIS amy$")
    waited = timed_reply(server, rf"^PRIVMSG amy :{VERIFY}$", started)
    assert WHOIS_TIMEOUT - 0.1 <= waited <= WHOIS_TIMEOUT + 1.5, waited
    assert calls.handlers == []
    assert calls.roles == []
    assert_silent(server)


def test_commands_for_anyone_run_with_no_sender_and_help_shows_no_role_command(server):
    say(server, "!anon", target="lcbot")
    server.expect_line(r"^WHOIS amy$")
    say(server, "!help", target="lcbot")  # shares the WHOIS in flight: no second one
    say(server, "!ping still there", target="lcbot")
    server.expect_line(r"^PRIVMSG amy :anon ran$", timeout=WHOIS_TIMEOUT + 3)
    listing = server.expect_line(r"^PRIVMSG amy :Commands: ")
    server.expect_line(r"^PRIVMSG amy :pong still there$")
    assert calls.handlers == [("anon", None)]
    assert calls.roles == []
    shown = listing.split(":Commands: ", 1)[1].split(".")[0].split()
    assert "!boss" not in shown
    assert {"!ping", "!help", "!anon", "!secret"} <= set(shown)


def test_a_nick_argument_nobody_can_look_up_stops_the_command(server):
    say(server, "!lookup bob", target="lcbot")
    whois = {server.expect_line(r"^WHOIS "), server.expect_line(r"^WHOIS ")}
    assert whois == {"WHOIS amy", "WHOIS bob"}
    server.expect_line(
        r"^PRIVMSG amy :I couldn't look up bob just now; try again in a moment\.$",
        timeout=WHOIS_TIMEOUT + 3,
    )
    assert calls.handlers == []


def test_a_whois_in_flight_when_the_connection_drops_fails_at_once(scripted_server, tmp_path):
    calls.__init__()
    slow = 30.0  # the drop, not this timeout, must end the wait
    config = bot_config(
        scripted_server.host,
        scripted_server.port,
        f"sqlite:///{tmp_path}/b.db",
        bot={"identity": "account", "whois_timeout": slow},
    )
    bot = BotThread(config, extra_plugins=[probe]).start(wait_joined=False)
    try:
        server = scripted_server
        server.expect_line(r"^CAP LS 302$")
        server.send(":irc.test CAP * LS :")
        server.expect_line(r"^CAP END$", skip=True)
        server.send(":irc.test 001 lcbot :Welcome")
        server.expect_line(r"^JOIN #livechat$")
        say(server, "!secret", target="lcbot")
        say(server, "!anon", target="lcbot")
        server.expect_line(r"^WHOIS amy$")
        assert bot.call(lambda: len(bot.bot.resolver._pending)) == 1
        dropped = time.monotonic()
        server.close_client()
        # Both commands waited on the one WHOIS: !anon now runs (no sender), !secret never.
        assert calls.ran.wait(5), "the WHOIS in flight was not failed by the disconnect"
        assert time.monotonic() - dropped < 5 < slow
        assert calls.handlers == [("anon", None)]
        assert bot.call(lambda: len(bot.bot.resolver._pending)) == 0
        assert bot.error is None
    finally:
        bot.stop()
    assert calls.handlers == [("anon", None)]

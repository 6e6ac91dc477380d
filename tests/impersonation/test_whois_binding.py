"""A WHOIS answer counts only for the line that asked.

A scripted server in account mode with no capabilities: the bot learns a sender's account
only by WHOIS, and the server answers (or does not) exactly as each test scripts it. The
attack: Amy says a command and quits (or changes nick); Eve takes the nick before the WHOIS
is answered, so the answer describes Eve's connection and Eve's account. Before, the command
ran as whoever held the nick when the answer came back. Now the 311 reply must show the
``user@host`` of the line that asked, and a NICK or QUIT of that nick ends the lookup.
"""

from __future__ import annotations

import threading

import pytest

from ircbot.plugin import Plugin
from tests.support.botthread import BotThread, bot_config

pytestmark = pytest.mark.timeout(60)

VERIFY = "I couldn't verify you just now; try again in a moment."


class Calls:
    def __init__(self) -> None:
        self.senders: list[object] = []
        self.lock = threading.Lock()

    def record(self, sender: object) -> None:
        with self.lock:
            self.senders.append(sender)


calls = Calls()
probe = Plugin("bindprobe")


@probe.command("whoami", identified=True, help="Say which account the bot gives you.")
def _whoami(ctx) -> None:
    calls.record(ctx.sender)
    ctx.reply(f"you are {ctx.sender.key}")


@pytest.fixture
def server(scripted_server, tmp_path):
    """The bot registered in account mode on a server that offers no capabilities."""
    calls.__init__()
    config = bot_config(
        scripted_server.host,
        scripted_server.port,
        f"sqlite:///{tmp_path}/b.db",
        bot={"identity": "account", "whois_timeout": 5.0, "user_burst": 20},
    )
    bot = BotThread(config, extra_plugins=[probe]).start(wait_joined=False)
    scripted_server.register_bot()
    yield scripted_server
    scripted_server.close_client()
    bot.stop()


def answer_whois(server, nick: str, user: str, host: str, account: str | None) -> None:
    server.send(f":srv 311 lcbot {nick} {user} {host} * :real name")
    if account:
        server.send(f":srv 330 lcbot {nick} {account} :is logged in as")
    server.send(f":srv 318 lcbot {nick} :End of /WHOIS list.")


def test_the_answer_about_the_line_that_asked_identifies_it(server) -> None:
    server.send(":amy!~amy@amy.example PRIVMSG lcbot :!whoami")
    server.expect_line(r"^WHOIS amy$")
    answer_whois(server, "amy", "~amy", "amy.example", "Amy")
    server.expect_line(r"^PRIVMSG amy :you are amy$")
    assert len(calls.senders) == 1


def test_an_answer_about_another_connection_on_the_nick_is_refused(server) -> None:
    server.send(":amy!~amy@amy.example PRIVMSG lcbot :!whoami")
    server.expect_line(r"^WHOIS amy$")
    # Amy is gone and Eve holds the nick by the time the server answers (the bot was not
    # in a channel with them, so it saw neither the QUIT nor Eve's arrival).
    answer_whois(server, "amy", "~eve", "evil.example", "Eve")
    server.expect_line(rf"^PRIVMSG amy :{VERIFY}$")
    server.send(":bob!~bob@bob.example PRIVMSG lcbot :!whoami")  # a marker the bot answers
    server.expect_line(r"^WHOIS bob$")
    answer_whois(server, "bob", "~bob", "bob.example", "Bob")
    server.expect_line(r"^PRIVMSG bob :you are bob$")
    assert [s.key for s in calls.senders] == ["bob"]  # the handler never ran as Eve


@pytest.mark.parametrize("change", ["NICK :amy_", "QUIT :bye"])
def test_a_nick_change_or_quit_before_the_answer_ends_the_lookup(server, change: str) -> None:
    server.send(":amy!~amy@amy.example JOIN #livechat")
    server.send(":amy!~amy@amy.example PRIVMSG #livechat :!whoami")
    server.expect_line(r"^WHOIS amy$")
    server.send(f":amy!~amy@amy.example {change}")
    server.expect_line(rf"^PRIVMSG #livechat :amy: {VERIFY}$")  # at once, not at the timeout
    # A late answer for the old lookup finds nothing waiting: nobody is credited with it.
    answer_whois(server, "amy", "~amy", "amy.example", "Amy")
    server.send(":bob!~bob@bob.example PRIVMSG lcbot :!whoami")
    server.expect_line(r"^WHOIS bob$")
    answer_whois(server, "bob", "~bob", "bob.example", "Bob")
    server.expect_line(r"^PRIVMSG bob :you are bob$")
    assert [s.key for s in calls.senders] == ["bob"]

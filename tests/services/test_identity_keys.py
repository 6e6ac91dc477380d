"""One services account is one person, however the config or the shell spells its name.

Services name an account in its registered spelling (``ikhelp[m]``); a coordinator types it
as they remember it (``IKHelp[M]`` in ``[livechat] helpers``, ``IKCOORD[M]`` after
``ircbot coordinator add``). The bot must give all of them the same identity key, on a
network whose CASEMAPPING (rfc1459 on InspIRCd) folds ``[m]`` to ``{m}``, and the shell,
which never sees that CASEMAPPING, must find the person the bot stored.

People are connected and registered once for the module; each mode of
:data:`~tests.services.botnet.MODES` gets a fresh bot and database on its own channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from ircbot.cli import main
from tests.services.botnet import MODES, ServicesBot, start_bot
from tests.support.client import IRCTestClient
from tests.support.services import DEFAULT_CAPS, ServicesNetwork, Waker

pytestmark = [pytest.mark.services, pytest.mark.timeout(30)]

ACCOUNTS = {nick: f"pw-{nick}-7" for nick in ("ikbot", "ikhelp[m]", "ikcoord[m]", "iknew[m]")}
TRAINEE = "iknew[m]"


@pytest.fixture(scope="module")
def people(services_network: ServicesNetwork, services_waker: Waker) -> Iterator[dict]:
    clients = services_network.connect_many(list(ACCOUNTS), caps=DEFAULT_CAPS)
    try:
        for client in clients:
            client.say("NickServ", f"REGISTER {ACCOUNTS[client.current_nick]} ik@example.org")
        for client in clients:
            client.expect(command="900")
        clients.pop(0).quit()  # the bot logs in with SASL as ikbot
        yield {client.current_nick: client for client in clients}
    finally:
        for client in clients:
            client.quit()


@pytest.fixture(scope="module", params=list(MODES))
def bot(
    request: pytest.FixtureRequest, services_network: ServicesNetwork, people: dict
) -> Iterator[ServicesBot]:
    mode = request.param
    bot = start_bot(
        services_network,
        nick="ikbot",
        channel=f"#ik-{mode}",
        mode=mode,
        sasl=("ikbot", ACCOUNTS["ikbot"]),
        plugins=["livechat"],
        sections={"livechat": {"helpers": ["IKHelp[M]"], "threshold": 2}},
    )
    try:
        for client in people.values():
            client.join(bot.channel)
        yield bot
    finally:
        bot.stop()
        for client in people.values():
            client.drain()
            client.send_raw(f"PART {bot.channel}")


def ask(bot: ServicesBot, client: IRCTestClient, text: str) -> str:
    client.say(bot.nick, text)
    return bot.expect(client, target=client.current_nick)


def shell(bot: ServicesBot, *args: str) -> str:
    """``ircbot -c <the bot's config> ARGS``, on the database the bot is using."""
    result = CliRunner().invoke(main, ["-c", str(bot.thread.path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_helper_seeded_in_another_spelling_is_the_logged_in_account(
    bot: ServicesBot, people: dict
) -> None:
    assert re.search(r"you are now a trainee", ask(bot, people[TRAINEE], "!newhelper"), re.I)
    reply = ask(bot, people["ikhelp[m]"], f"!vouch {TRAINEE}")
    assert re.search(rf"^vouched for {re.escape(TRAINEE)}\W.*\b1/2\b", reply), reply


def test_a_coordinator_added_in_the_shell_in_another_spelling_is_the_account(
    bot: ServicesBot, people: dict
) -> None:
    assert "is now a coordinator" in shell(bot, "coordinator", "add", "IKCOORD[M]")
    reply = ask(bot, people["ikcoord[m]"], "!ready")
    assert "for coordinators only" not in reply, reply
    listed = shell(bot, "coordinator", "list").splitlines()
    assert [line.split()[0] for line in listed] == ["ikcoord[m]"], listed


def test_the_shell_finds_the_person_the_bot_knows_in_any_spelling(
    bot: ServicesBot, people: dict
) -> None:
    assert "is now a helper" in shell(bot, "helper", "add", "IKNEW[M]")
    identities = sorted(line.split()[0] for line in shell(bot, "helper", "list").splitlines())
    assert identities == ["ikcoord[m]", "ikhelp[m]", "iknew[m]"], identities

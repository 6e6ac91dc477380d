"""``!help`` lists what the asker may use: a command that needs a role is shown only to
someone who holds that role (or a higher one), and ``!help CMD`` names the role a command
needs whoever asks.

The livechat plugin on ngircd in hostmask mode, with a coordinator and a helper granted by
configured ``nick!user@host`` masks; the expected lists are computed from the declarations,
so they follow any command a plugin adds.
"""

from __future__ import annotations

import pytest
from ircbot_plugins.livechat.roles import Role

from tests.support.botthread import BotThread, bot_config

pytestmark = pytest.mark.timeout(60)

BOT = "helpbot"
CHAN = "#helproles"


@pytest.fixture(scope="module")
def helpbot(ngircd, tmp_path_factory):
    db = tmp_path_factory.mktemp("helpbot") / "bot.db"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{db}",
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"plugins": ["livechat"], "user_burst": 20},
        livechat={"coordinators": ["hr_coord!*@127.0.0.1"], "helpers": ["hr_helper!*@127.0.0.1"]},
    )
    with BotThread(config) as bot:
        yield bot


def expected_listing(bot: BotThread, role: Role) -> list[str]:
    dispatcher = bot.bot.dispatcher
    return [f"!{c.name}" for c in dispatcher.declared if c.role is None or (role >= c.role)]


def listing(client) -> list[str]:
    client.say(BOT, "!help")
    reply = client.expect(r"^Commands: .*\. Say !help <command> for details\.$", source=BOT)
    return reply.text.removeprefix("Commands: ").split(".")[0].split()


@pytest.mark.parametrize(
    ("nick", "role"),
    [("hr_anyone", Role.NONE), ("hr_helper", Role.HELPER), ("hr_coord", Role.COORDINATOR)],
)
def test_help_lists_exactly_the_commands_the_asker_may_use(helpbot, irc_client, nick, role):
    client = irc_client(nick, channels=(CHAN,))
    shown = listing(client)
    assert shown == expected_listing(helpbot, role)
    role_commands = {f"!{c.name}": c.role for c in helpbot.bot.dispatcher.declared if c.role}
    # The plugin has commands for both roles, or the lists above would prove little.
    assert set(role_commands.values()) == {Role.HELPER, Role.COORDINATOR}
    for name, needed in role_commands.items():
        assert (name in shown) == (role >= needed), (name, role)


@pytest.mark.parametrize("nick", ["hr_anyone2", "hr_coord"])
def test_help_for_a_role_command_names_the_role_whoever_asks(helpbot, irc_client, nick):
    client = irc_client(nick, channels=(CHAN,))
    dispatcher = helpbot.bot.dispatcher
    for name, label in (("promote", "coordinators"), ("vouch", "helpers")):
        command = dispatcher.commands[name]
        client.say(BOT, f"!help {name}")
        reply = client.expect(r"", source=BOT, target=nick).text
        assert reply == f"{dispatcher.usage_line(command)}: {command.help} ({label})"


def test_a_listed_command_is_one_the_asker_can_run_and_a_hidden_one_is_refused(helpbot, irc_client):
    helper = irc_client("hr_helper", channels=(CHAN,))
    assert "!ready" not in listing(helper)
    helper.say(BOT, "!ready")
    helper.expect(r"^!ready is for coordinators only\.$", source=BOT)
    coordinator = irc_client("hr_coord", channels=(CHAN,))
    assert "!ready" in listing(coordinator)
    coordinator.say(BOT, "!ready")
    reply = coordinator.expect(r"", source=BOT, target="hr_coord").text
    assert "only" not in reply

"""Roles hold for every command, whichever plugin declares it.

The livechat plugin declares the roles, and here grants coordinator by a configured
``nick!user@host`` mask. A command of another plugin that needs a role, and the core's
``!help``, which lists only the commands the asker may use, must see that role too: the role
resolver reads the livechat config, not the config of the command being run.
"""

from __future__ import annotations

import pytest
from ircbot_plugins.livechat.roles import Role

from ircbot.plugin import Plugin
from tests.support.botthread import BotThread, bot_config

BOT = "rolebot"
CHAN = "#roles"

probe = Plugin("roleprobe")


@probe.command("coordping", role=Role.COORDINATOR, help="Answer coordinators only.")
def _coordping(ctx) -> None:
    ctx.reply(f"hello {ctx.role.label}")


def listed(help_reply: str) -> set[str]:
    """The commands a ``!help`` reply lists."""
    return set(help_reply.removeprefix("Commands: ").split(".")[0].split())


@pytest.fixture(scope="module")
def rolebot(ngircd, tmp_path_factory):
    db = tmp_path_factory.mktemp("rolebot") / "bot.db"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{db}",
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"plugins": ["livechat"], "user_burst": 20},
        livechat={"coordinators": ["rp_coord*!*@127.0.0.1"]},
    )
    with BotThread(config, extra_plugins=[probe]) as bot:
        yield bot


def test_help_lists_coordinator_commands_to_a_coordinator_by_mask(rolebot, irc_client):
    coordinator = irc_client("rp_coord1", channels=(CHAN,))
    coordinator.say(BOT, "!help")
    usable = listed(coordinator.expect(r"^Commands: ", source=BOT).text)
    assert {"!promote", "!coordping"} <= usable, usable


def test_another_plugins_command_sees_a_coordinator_by_mask(rolebot, irc_client):
    coordinator = irc_client("rp_coord2", channels=(CHAN,))
    coordinator.say(BOT, "!coordping")
    coordinator.expect(r"^hello coordinator$", source=BOT)


def test_another_plugins_command_still_refuses_everyone_else(rolebot, irc_client):
    other = irc_client("rp_other", channels=(CHAN,))
    other.say(BOT, "!coordping")
    other.expect(r"^!coordping is for coordinators only\.$", source=BOT)
    other.say(BOT, "!help")
    usable = listed(other.expect(r"^Commands: ", source=BOT).text)
    assert "!vouch" not in usable and "!coordping" not in usable, usable

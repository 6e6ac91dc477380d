"""livechat: the trainee-approval process of a live-chat support team, run by the bot.

Someone says ``!newhelper`` and becomes a trainee; helpers they shadowed ``!vouch`` for
them; at the threshold every coordinator is pinged (durably: whoever is away gets it when
back) and reminded past the 24-hour promise until someone says ``!promote``. No trainee
waits on one person's memory. The rules are in :mod:`.workflow`, the IRC commands in
:mod:`.commands` and :mod:`.admin`, the admin command line in :mod:`.cli`.
"""

from __future__ import annotations

from pathlib import Path

from ircbot.plugin import Plugin

from .config import LivechatConfig

__all__ = ["LivechatConfig", "plugin"]

# Its tables are a migration branch of its own (label ``livechat``), upgraded with the core's
# only while the plugin is enabled, as any third-party plugin's would be.
plugin = Plugin(
    "livechat", config=LivechatConfig, migrations=Path(__file__).resolve().parent / "migrations"
)

# Importing these modules declares their commands, jobs, events and CLI on ``plugin``.
from . import admin, cli, commands  # noqa: E402, F401

"""livechat: the trainee-approval process of a live-chat support team, run by the bot.

Someone says ``!newhelper`` and becomes a trainee; helpers they shadowed ``!vouch`` for
them; at the threshold every coordinator is pinged (durably: whoever is away gets it when
back) and reminded past the 24-hour promise until someone says ``!promote``. No trainee
waits on one person's memory. The rules are in :mod:`.workflow`, the IRC commands in
:mod:`.commands` and :mod:`.admin`, the admin command line in :mod:`.cli`.
"""

from __future__ import annotations

from ircbot.plugin import Plugin

from .config import LivechatConfig

__all__ = ["LivechatConfig", "plugin"]

plugin = Plugin("livechat", config=LivechatConfig)

# Importing these modules declares their commands, jobs, events and CLI on ``plugin``.
from . import admin, cli, commands  # noqa: E402, F401

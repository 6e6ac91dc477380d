"""livechat: the trainee-approval process of a live-chat support team, run by the bot.

Someone says ``!newhelper`` and becomes a trainee; helpers they shadowed ``!vouch`` for
them; at the threshold every coordinator is pinged (durably: whoever is away gets it when
back) and reminded past the 24-hour promise until someone says ``!promote``. No trainee
waits on one person's memory. The rules are in :mod:`.workflow`, the IRC commands in
:mod:`.commands` and :mod:`.admin`, the admin command line in :mod:`.cli`.
"""

from __future__ import annotations

from . import admin, cli, commands, mailing  # noqa: F401  (importing them declares on ``plugin``)
from .config import LivechatConfig
from .declaration import plugin

__all__ = ["LivechatConfig", "plugin"]

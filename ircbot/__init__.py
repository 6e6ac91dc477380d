"""livechat-bot's core: an IRC bot whose commands come from plugins.

This module is the API a plugin is written against; what it does not export is internal
(see "Writing a plugin" in the README). A plugin is a :class:`Plugin` object:

- commands are declared with the :meth:`Plugin.command` decorator (a method, not a
  module-level ``command``: a declaration belongs to one plugin, and a module-level
  decorator would need a global registry), jobs with :meth:`Plugin.job`, bot events with
  :meth:`Plugin.on`, admin commands with :meth:`Plugin.cli`, the config section as a
  dataclass of :func:`option` fields, tables on :class:`Base` with their own migrations;
- a handler gets a :class:`CommandContext` (a job or an event a :class:`JobContext`): who is
  asking, the session, config, :class:`Clock`, replies, durable ``notify``, a read-only
  :class:`NetworkView` and :class:`CommandCatalog`;
- ``raise Refusal("short reason")`` refuses a command (the reply is that text; what the
  command began is undone). :class:`UsageError` is raised by the dispatcher when the words
  don't fit the declared usage. Every exception is in :mod:`ircbot.errors`;
- :class:`Role` is what the core asks of a role: an ordered value. The roles themselves are
  declared by one plugin, with :meth:`Plugin.roles` and a :data:`RoleResolver`.

Importing this module is cheap: each name is imported from its module on first use
(``from ircbot import Plugin`` loads what :class:`Plugin` needs, no more), so
``python -m ircbot --version`` does not pay for SQLAlchemy.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from ircbot.catalog import Role as Role
    from ircbot.clock import Clock as Clock
    from ircbot.config import option as option
    from ircbot.context import CommandCatalog as CommandCatalog
    from ircbot.context import CommandContext as CommandContext
    from ircbot.context import JobContext as JobContext
    from ircbot.context import NetworkView as NetworkView
    from ircbot.errors import Refusal as Refusal
    from ircbot.errors import UsageError as UsageError
    from ircbot.identity import Identity as Identity
    from ircbot.identity import Target as Target
    from ircbot.plugin import Command as Command
    from ircbot.plugin import Plugin as Plugin
    from ircbot.plugin import RoleResolver as RoleResolver
    from ircbot.storage import Base as Base
    from ircbot.storage import UTCDateTime as UTCDateTime

__all__ = [
    "Base",
    "Clock",
    "Command",
    "CommandCatalog",
    "CommandContext",
    "Identity",
    "JobContext",
    "NetworkView",
    "Plugin",
    "Refusal",
    "Role",
    "RoleResolver",
    "Target",
    "UTCDateTime",
    "UsageError",
    "option",
]

_HOME = {
    "Base": "ircbot.storage",
    "Clock": "ircbot.clock",
    "Command": "ircbot.plugin",
    "CommandCatalog": "ircbot.context",
    "CommandContext": "ircbot.context",
    "Identity": "ircbot.identity",
    "JobContext": "ircbot.context",
    "NetworkView": "ircbot.context",
    "Plugin": "ircbot.plugin",
    "Refusal": "ircbot.errors",
    "Role": "ircbot.catalog",
    "RoleResolver": "ircbot.plugin",
    "Target": "ircbot.identity",
    "UTCDateTime": "ircbot.storage",
    "UsageError": "ircbot.errors",
    "option": "ircbot.config",
}
"""Where each exported name is defined: imported from there on first use (PEP 562)."""


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'ircbot' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup finds it without calling this again
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

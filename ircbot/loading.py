"""Finding plugins: every installed one through its entry point, the enabled ones by name.

One policy for every caller (the bot, the command line, Alembic, the tests and scripts):

* loading what is installed never fails: a plugin whose import raises, or whose entry point
  is not a :class:`~ircbot.plugin.Plugin`, is left out with a warning and its reason kept (a
  broken third-party plugin must not take ``ircbot --help`` or ``config check`` down with it);
* enabling a plugin that is not installed, or that did not load, is a configuration mistake:
  a :class:`LookupError` with the reason, which the command line turns into one line naming
  the file and key.

It lives apart from :mod:`ircbot.plugin` (what a plugin declares) because it needs the core's
own commands (:mod:`ircbot.builtin`), which are themselves a plugin: the declaration must not
import its users.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

from ircbot import builtin
from ircbot.plugin import Plugin

__all__ = ["ENTRY_POINT_GROUP", "Installed", "installed"]

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "ircbot.plugins"


@dataclass(frozen=True)
class Installed:
    """The installed plugins that loaded, by entry-point name, and why the others did not."""

    plugins: dict[str, Plugin]
    broken: dict[str, str]

    def schemas(self) -> dict[str, type]:
        """Each plugin's config section type: known before a config says which are enabled."""
        return {name: p.config for name, p in self.plugins.items() if p.config}

    def enabled(self, names: Sequence[str]) -> list[Plugin]:
        """The plugins ``names`` asks for, in that order, after the core's own commands."""
        plugins = [builtin.plugin]
        for name in names:
            if name in self.broken:
                raise LookupError(f"plugin {name!r} failed to load: {self.broken[name]}")
            if name not in self.plugins:
                names_installed = ", ".join(sorted(self.plugins)) or "none"
                raise LookupError(
                    f"plugin {name!r} is not installed (installed: {names_installed})"
                )
            plugins.append(self.plugins[name])
        return plugins


def installed() -> Installed:
    """Load every plugin of the ``ircbot.plugins`` entry-point group (see the policy above)."""
    plugins: dict[str, Plugin] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            broken[ep.name] = str(exc) or type(exc).__name__
        else:
            if isinstance(obj, Plugin):
                plugins[ep.name] = obj
            else:
                broken[ep.name] = f"its entry point {ep.value} is not an ircbot Plugin"
        if ep.name in broken:
            logger.warning("cannot load plugin %s: %s", ep.name, broken[ep.name])
    return Installed(plugins, broken)

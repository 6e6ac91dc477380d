"""The livechat :class:`~ircbot.plugin.Plugin` object, on which the other modules declare.

Apart from the package's ``__init__`` so that the modules declaring commands, jobs, events
and CLI on it (:mod:`.commands`, :mod:`.admin`, :mod:`.cli`, :mod:`.htmlreport`) import it
from here while the package imports them: no module imports one that imports it back.
"""

from __future__ import annotations

from pathlib import Path

from ircbot.plugin import Plugin

from .config import LivechatConfig

__all__ = ["plugin"]

# Its tables are a migration branch of its own (label ``livechat``), upgraded with the core's
# only while the plugin is enabled, as any third-party plugin's would be.
plugin = Plugin(
    "livechat", config=LivechatConfig, migrations=Path(__file__).resolve().parent / "migrations"
)

"""The declared commands and who may use them: the dispatcher's table, ``!help``'s answers.

One table, built once from the enabled plugins: each name and alias to its declaration.
Roles are the concern of the one plugin that declares them (:meth:`Plugin.roles`): the core
knows only that a role is an ordered value, compared with ``>=`` against the role a command
requires, and that the plugin can name it ("helper") and tell a sender's role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ircbot.context import CommandContext
from ircbot.identity import Identity
from ircbot.plugin import Command, Plugin

__all__ = ["Catalog", "Role"]


class Role(Protocol):
    """What the core asks of a role: that it be ordered. The values are the plugin's own.

    The core declares no roles. The one plugin that declares them (:meth:`Plugin.roles`) says
    how to tell a sender's role and how to name one; a command's ``role=`` is the least role
    it requires, compared with ``>=``. An :class:`enum.IntEnum` is the usual choice (the
    livechat plugin's ``Role``: none < helper < coordinator).
    """

    def __lt__(self, other: Any, /) -> bool: ...

    def __ge__(self, other: Any, /) -> bool: ...


class Catalog:
    """The commands of the enabled plugins, and the role questions about them.

    It is the :class:`~ircbot.context.CommandCatalog` a handler's context carries: read-only
    once built.
    """

    def __init__(
        self, plugins: Iterable[Plugin], *, prefix: str, plugin_configs: Mapping[str, Any]
    ) -> None:
        self.prefix = prefix
        self._plugin_configs = plugin_configs
        self.commands: dict[str, Command] = {}
        self._role_resolver: Callable[[Any, Identity], Any] | None = None
        self.role_name: Callable[[Any], str] = str
        self._role_plugin = ""
        for plugin in plugins:
            for command in plugin.commands:
                for name in (command.name, *command.aliases):
                    if name in self.commands:
                        raise ValueError(f"command !{name} declared twice")
                    self.commands[name] = command
            if plugin.role_resolver and self._role_resolver is None:
                self._role_resolver, self.role_name = plugin.role_resolver, plugin.role_names
                self._role_plugin = plugin.name

    @property
    def declared(self) -> list[Command]:
        """Each command once, in declaration order (aliases folded in)."""
        return list(dict.fromkeys(self.commands.values()))

    def find(self, name: str) -> Command | None:
        return self.commands.get(name.lower().removeprefix(self.prefix))

    def usage_line(self, command: Command) -> str:
        return f"{self.prefix}{command.name} {command.shown_usage}".rstrip()

    def describe(self, command: Command) -> str:
        who = f" ({self.role_name(command.role)}s)" if command.role is not None else ""
        return f"{self.usage_line(command)}: {command.help_text(self.prefix)}{who}"

    def role_of(self, ctx: CommandContext) -> Any:
        """The sender's role, asked of the plugin that declares roles (None if none does).

        The resolver sees its own plugin's config (where its roles are configured), not
        that of the command being run, which may be another plugin's or the core's (``!help``).
        """
        if self._role_resolver is None or ctx.sender is None:
            return None
        owner = ctx.with_config(self._plugin_configs.get(self._role_plugin))
        return self._role_resolver(owner, ctx.sender)

    def allows(self, command: Command, role: Role | None) -> bool:
        """Whether someone of ``role`` (None: no role, or not identified) may use ``command``."""
        return command.role is None or (role is not None and role >= command.role)

    def usable_by(self, ctx: CommandContext) -> list[Command]:
        role = ctx.role if ctx.role is not None else self.role_of(ctx)
        return [command for command in self.declared if self.allows(command, role)]

"""The plugin API: what a plugin declares, and how plugins are found.

A plugin is a module-level :class:`Plugin` object. Its commands are plain functions
decorated with :meth:`Plugin.command`; the declaration carries everything the dispatcher and
``!help`` need (name, aliases, required role, usage, help text), so a command can't exist
without its help. Arguments are declared in the usage string and arrive as positional
parameters:

``<name>``
    one required word;
``[name]``
    one optional word (``None`` when absent);
``<name...>`` / ``[name...]``
    the rest of the line;
``<a|b|c>``
    one of the listed words;
``<name:nick>`` / ``[name:nick]``
    a nick, resolved before the handler runs to a :class:`~ircbot.identity.Target` (the person
    holding that nick now, identity looked up by WHOIS if need be);
``<name:int>`` / ``[name:int]``
    a whole number from 1 to :data:`INT_ARG_MAX`, in ASCII digits, passed as an ``int``.
    ``str.isdigit()`` and ``int()`` are no check: they accept ``²``, ``٣`` or a fullwidth 3 (and
    ``int("²")`` then raises), so anything else is the usage reply before the handler runs.

Plugins are found through the ``ircbot.plugins`` entry-point group (:mod:`ircbot.loading`);
``[bot] plugins`` in the config says which are enabled. Nothing here is global: a
:class:`Plugin` only describes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ircbot.errors import UsageError

__all__ = [
    "INT_ARG_MAX",
    "Command",
    "Job",
    "Param",
    "Plugin",
    "UsageError",
    "parse_usage",
]

logger = logging.getLogger(__name__)
INT_ARG_MAX = 1_000_000
"""The largest ``:int`` argument: more than any page count or limit a command could mean."""
_ASCII_NUMBER = re.compile(r"[0-9]{1,7}")
_KINDS = ("", "nick", "int")


@dataclass(frozen=True)
class Param:
    """One declared argument of a command."""

    name: str
    required: bool
    rest: bool = False
    choices: tuple[str, ...] = ()
    is_nick: bool = False
    is_int: bool = False


_TOKEN = re.compile(r"^([<\[])([^\]>]+?)(\.\.\.)?([>\]])$")
_KIND = re.compile(r":\w+(?=(?:\.\.\.)?[>\]])")


def parse_usage(usage: str) -> tuple[Param, ...]:
    """Read a usage string into parameters; a malformed one is a programming error."""
    params = []
    tokens = usage.split()
    for i, token in enumerate(tokens):
        m = _TOKEN.match(token)
        if not m or (m[1] == "<") != (m[4] == ">"):
            raise ValueError(f"bad usage token {token!r} in {usage!r}")
        name, _, kind = m[2].partition(":")
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r} in {token!r} (kinds: nick, int)")
        choices = tuple(name.split("|")) if "|" in name else ()
        rest = bool(m[3])
        if rest and i != len(tokens) - 1:
            raise ValueError(f"only the last parameter may take the rest: {usage!r}")
        params.append(
            Param(
                name="|".join(choices) if choices else name,
                required=m[1] == "<",
                rest=rest,
                choices=choices,
                is_nick=kind == "nick",
                is_int=kind == "int",
            )
        )
    required_seen_after_optional = False
    optional = False
    for p in params:
        optional = optional or not p.required
        required_seen_after_optional = required_seen_after_optional or (optional and p.required)
    if required_seen_after_optional:
        raise ValueError(f"a required parameter follows an optional one: {usage!r}")
    return tuple(params)


def _whole_number(param: Param, word: str) -> int:
    if _ASCII_NUMBER.fullmatch(word) and 1 <= int(word) <= INT_ARG_MAX:
        return int(word)
    raise UsageError(f"<{param.name}> must be a whole number from 1 to {INT_ARG_MAX}")


def split_args(params: Sequence[Param], text: str) -> list[str | int | None]:
    """Split the words after a command by ``params``; raise UsageError if they don't fit."""
    values: list[str | int | None] = []
    remaining = text.strip()
    for p in params:
        if not remaining:
            if p.required:
                raise UsageError(f"missing <{p.name}>")
            values.append(None)
            continue
        if p.rest:
            word, remaining = remaining, ""
        else:
            word, _, remaining = remaining.partition(" ")
            remaining = remaining.lstrip()
        if p.choices and word.lower() not in p.choices:
            raise UsageError(f"<{p.name}> must be one of: {', '.join(p.choices)}")
        if p.is_int:
            values.append(_whole_number(p, word))
            continue
        values.append(word.lower() if p.choices else word)
    if remaining:
        raise UsageError("too many arguments")
    return values


@dataclass(frozen=True)
class Command:
    """A declared command, as the dispatcher and ``!help`` see it."""

    name: str
    handler: Callable[..., Any]
    plugin: str
    help: str
    usage: str = ""
    aliases: tuple[str, ...] = ()
    role: Any = None
    identified: bool = False
    params: tuple[Param, ...] = ()

    @property
    def needs_identity(self) -> bool:
        """A role can only be checked against someone the bot can identify."""
        return self.identified or self.role is not None

    def help_text(self, prefix: str) -> str:
        """The help as people read it: ``{prefix}`` in it spells a command with ``[bot] prefix``
        ("until {prefix}unhold" reads "until .unhold" on a bot whose prefix is ``.``)."""
        return self.help.replace("{prefix}", prefix)

    @property
    def shown_usage(self) -> str:
        """The usage as people read it: ``<nick:nick>`` is shown as ``<nick>``."""
        return _KIND.sub("", self.usage)


@dataclass(frozen=True)
class Job:
    """A periodic task: runs every ``every`` seconds of real time, with a fresh JobContext."""

    name: str
    every: float
    handler: Callable[..., Any]
    plugin: str


RoleResolver = Callable[[Any, Any], Any]
"""``(context, identity) -> role``: the sender's role, compared with a command's ``role``."""


@dataclass
class Plugin:
    """What one plugin contributes: commands, jobs, a config section, migrations, CLI."""

    name: str
    config: type | None = None
    migrations: Path | None = None
    commands: list[Command] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    cli_commands: list[Any] = field(default_factory=list)
    role_resolver: RoleResolver | None = None
    role_names: Callable[[Any], str] = str
    identity_masks: Callable[[Any], Sequence[str]] | None = None
    event_handlers: dict[str, list[Callable[..., Any]]] = field(default_factory=dict)

    def command(
        self,
        name: str,
        *,
        help: str,
        usage: str = "",
        aliases: Sequence[str] = (),
        role: Any = None,
        identified: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare a command. ``help`` is required: ``!help`` and the tests read it; name
        another command in it as ``{prefix}name`` (see :meth:`Command.help_text`)."""
        if not help.strip():
            raise ValueError(f"command {name!r} needs help text")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.commands.append(
                Command(
                    name=name.lower(),
                    handler=fn,
                    plugin=self.name,
                    help=help.strip(),
                    usage=usage,
                    aliases=tuple(a.lower() for a in aliases),
                    role=role,
                    identified=identified,
                    params=parse_usage(usage),
                )
            )
            return fn

        return register

    def job(self, every: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare a periodic job; it gets a JobContext (session, clock, config, notify)."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.jobs.append(Job(name=fn.__name__, every=every, handler=fn, plugin=self.name))
            return fn

        return register

    def roles(
        self,
        names: Callable[[Any], str] = str,
        masks: Callable[[Any], Sequence[str]] | None = None,
    ) -> Callable[[RoleResolver], RoleResolver]:
        """Declare the function that tells a sender's role (one plugin per bot may).

        ``masks(config)`` lists the ``nick!user@host`` masks the plugin's config grants roles
        to: in hostmask mode whoever matches exactly one of them *is* that entry (see
        :mod:`ircbot.identity_policy`).
        """

        def register(fn: RoleResolver) -> RoleResolver:
            self.role_resolver = fn
            self.role_names = names
            self.identity_masks = masks
            return fn

        return register

    def on(self, event: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare a listener for a bot event.

        ``start`` ``(ctx)``: before connecting. ``delivered`` ``(session, message)``: an
        outbox row was sent. ``seen`` ``(ctx, identity, nick)``: the bot learnt who holds a
        nick it shares a channel with (their JOIN, the WHO after its own JOIN, a NICK, a
        services login, a host change), so a plugin can act before they say anything. It
        runs for every such line: return before touching ``ctx.session`` unless something
        is to change (the transaction is opened on first use). ``ctx`` is a JobContext.
        """

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.event_handlers.setdefault(event, []).append(fn)
            return fn

        return register

    def cli(self, command: Any) -> Any:
        """Add a click command or group under ``ircbot``."""
        self.cli_commands.append(command)
        return command

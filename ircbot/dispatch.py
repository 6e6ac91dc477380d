"""From a line of chat to a command handler, and from its result to replies.

The path of one command, top to bottom: recognise ``!name`` (anything else costs one
``startswith``) -> find the declaration -> per-person rate limit -> split the arguments by
the declared usage -> resolve the sender's identity and any nick arguments (maybe by WHOIS,
in which case the rest runs when the answer arrives) -> check the role -> run the handler in
one database transaction -> commit -> send the replies it collected and deliver the durable
messages it wrote. A refusal is one short reply; a crash is one short reply plus the
traceback in the log, and the bot goes on serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from ircbot.clock import Clock
from ircbot.context import CommandContext, Outgoing
from ircbot.errors import CommandError
from ircbot.identity import Identity, Target
from ircbot.network import NetworkState
from ircbot.outqueue import Requester
from ircbot.plugin import Command, Plugin, UsageError, split_args
from ircbot.ratelimit import TokenBucket
from ircbot.resolver import UNVERIFIED, Resolver, WhoisResult
from ircbot.storage import DatabaseBusy, optimistic

__all__ = ["Dispatcher", "RateLimiter"]

logger = logging.getLogger(__name__)

# mIRC formatting: bold, colour (with up to two numbers), hex colour, reset, monospace,
# reverse, italics, strikethrough, underline. Stripped so "\x02!vouch" is still !vouch.
_FORMATTING = re.compile(
    r"\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
_NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,49}$")


class RateLimiter:
    """One token bucket per person (user@host), so nobody can flood the bot or starve others."""

    def __init__(self, burst: float, rate: float, clock: Callable[[], float]) -> None:
        self.burst, self.rate, self.clock = burst, rate, clock
        self._buckets: dict[str, TokenBucket] = {}
        self._warned: set[str] = set()

    def allow(self, key: str) -> bool | None:
        """True: go on. False: over the limit, tell them once. None: over, already told."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 1000:
                self._prune()
            bucket = self._buckets[key] = TokenBucket(self.burst, self.rate, self.clock)
        if bucket.take():
            self._warned.discard(key)
            return True
        if key in self._warned:
            return None
        self._warned.add(key)
        return False

    def _prune(self) -> None:
        for key in [k for k, b in self._buckets.items() if b.is_full()]:
            del self._buckets[key]
            self._warned.discard(key)


class Say(Protocol):
    """Send a PRIVMSG or NOTICE as (part of) the answer to ``requester``."""

    def __call__(self, command: str, target: str, text: str, *, requester: Requester) -> None: ...


class Dispatcher:
    """Runs commands. ``say(command, target, text, requester=...)`` sends; ``delivered(keys)``
    wakes the outbox."""

    def __init__(
        self,
        plugins: Iterable[Plugin],
        *,
        plugin_configs: Mapping[str, Any],
        prefix: str,
        network: NetworkState,
        resolver: Resolver,
        session_factory: sessionmaker[Session],
        clock: Clock,
        limiter: RateLimiter,
        say: Say,
        notified: Callable[[set[str]], None],
    ) -> None:
        self.prefix = prefix
        self.network = network
        self.resolver = resolver
        self.session_factory = session_factory
        self.clock = clock
        self.limiter = limiter
        self.say = say
        self.notified = notified
        self.plugin_configs = plugin_configs
        self.commands: dict[str, Command] = {}
        self.role_resolver: Callable[[Any, Identity], Any] | None = None
        self.role_name: Callable[[Any], str] = str
        self.role_plugin: str | None = None
        for plugin in plugins:
            for command in plugin.commands:
                for name in (command.name, *command.aliases):
                    if name in self.commands:
                        raise ValueError(f"command !{name} declared twice")
                    self.commands[name] = command
            if plugin.role_resolver and self.role_resolver is None:
                self.role_resolver, self.role_name = plugin.role_resolver, plugin.role_names
                self.role_plugin = plugin.name

    @property
    def declared(self) -> list[Command]:
        """Each command once, in declaration order (aliases folded in)."""
        return list(dict.fromkeys(self.commands.values()))

    def usage_line(self, command: Command) -> str:
        return f"{self.prefix}{command.name} {command.shown_usage}".rstrip()

    # -- entry point ----------------------------------------------------------------------
    def on_message(
        self, nick: str, user: str, host: str, channel: str | None, text: str, tags: Mapping
    ) -> None:
        """A PRIVMSG to a channel (``channel`` set) or to the bot (``channel`` None)."""
        if not text.startswith(self.prefix):
            if not text or text[0] >= " ":
                return
            text = _FORMATTING.sub("", text)
            if not text.startswith(self.prefix):
                return
        body = _FORMATTING.sub("", text[len(self.prefix) :]).strip()
        name, _, argtext = body.partition(" ")
        name = name.lower()
        if not name:
            return
        command = self.commands.get(name)
        reply_to = channel or nick
        # Everything this command makes the bot say counts against the asker's share.
        requester = Requester(self.network.fold(f"{user}@{host}"), nick)

        def reply(message: str) -> None:
            text = f"{nick}: {message}" if channel else message
            self.say("PRIVMSG", reply_to, text, requester=requester)

        if command is None and channel is not None:
            return  # chat that happens to start with the prefix: not for us, costs nothing
        # Before the "unknown command" hint too: every reply counts, or a flood of made-up
        # commands in private would fill the output queue and delay everyone's answers.
        allowed = self.limiter.allow(requester.key)
        if not allowed:
            if allowed is False:
                text = "You're sending commands too fast; wait a moment."
                self.say("NOTICE", nick, text, requester=requester)
            return
        if command is None:
            reply(f"I don't know {self.prefix}{name}; say {self.prefix}help for the list.")
            return
        try:
            args = split_args(command.params, argtext)
            for param, value in zip(command.params, args, strict=True):
                if param.is_nick and value is not None and not _NICK.match(value):
                    raise UsageError(f"{value!r} is not a nick")
        except UsageError as exc:
            reply(f"{exc}. Usage: {self.usage_line(command)}")
            return
        # Resolved for every command, not only those that require it: a handler may still
        # use who is asking (``!status`` without a nick, ``!help`` by role). If the WHOIS
        # goes unanswered, such a command runs with no sender (see _run).
        sender = self.resolver.sender_now(nick, user, host, tags)
        nick_params = [
            (i, value)
            for i, (param, value) in enumerate(zip(command.params, args, strict=True))
            if param.is_nick and value is not None
        ]
        targets: dict[int, Target | object] = {
            i: self.resolver.target_now(v) for i, v in nick_params
        }
        lookups = [nick] if sender is UNVERIFIED else []
        lookups += [args[i] for i, t in targets.items() if t is UNVERIFIED]

        def run(results: dict[str, WhoisResult | None]) -> None:
            who = sender
            if who is UNVERIFIED:
                who = self.resolver.identity_from(results.get(self.network.fold(nick)))
            final = list(args)
            for i, target in targets.items():
                if target is UNVERIFIED:
                    result = results.get(self.network.fold(args[i]))
                    identity = self.resolver.identity_from(result)
                    if identity is UNVERIFIED:
                        reply(f"I couldn't look up {args[i]} just now; try again in a moment.")
                        return
                    target = Target(nick=args[i], identity=identity, online=bool(result.online))
                final[i] = target
            self._run(command, nick, who, channel, final, reply, requester)

        if lookups:
            self.resolver.resolve(lookups, run)
        else:
            run({})

    # -- running --------------------------------------------------------------------------
    def _run(
        self,
        command: Command,
        nick: str,
        sender: Identity | object | None,
        channel: str | None,
        args: list[Any],
        reply: Callable[[str], None],
        requester: Requester | None = None,
    ) -> None:
        if command.needs_identity and not isinstance(sender, Identity):
            if sender is UNVERIFIED:
                reply("I couldn't verify your account just now; try again in a moment.")
            elif self.network.identity_mode == "account":
                reply("Log in to services first (I trust accounts, not nicks), then try again.")
            else:
                reply("I can't identify you; ask a coordinator.")
            return

        def attempt(write: bool) -> CommandContext:
            ctx = CommandContext(
                session_factory=self.session_factory,
                config=self.plugin_configs.get(command.plugin),
                clock=self.clock,
                network=self.network,
                write=write,
                nick=nick,
                sender=sender if isinstance(sender, Identity) else None,
                channel=channel,
                prefix=self.prefix,
                role_name=self.role_name,
                dispatcher=self,
            )
            try:
                if command.role is not None:
                    ctx.role = self.role_of(ctx)
                    if ctx.role is None or ctx.role < command.role:
                        role = self.role_name(command.role)
                        raise CommandError(f"{self.prefix}{command.name} is for {role}s only.")
                command.handler(ctx, *args)
                ctx.finish(commit=True)
            except BaseException:
                ctx.finish(commit=False)
                raise
            return ctx

        try:
            ctx = optimistic(self.session_factory, attempt)
        except CommandError as exc:
            reply(str(exc))
            return
        except DatabaseBusy as exc:
            logger.warning("%s%s from %s: database busy (%s)", self.prefix, command.name, nick, exc)
            reply("the database is busy, try again in a moment")
            return
        except Exception:
            logger.exception("%s%s failed (from %s)", self.prefix, command.name, nick)
            reply(f"Sorry, {self.prefix}{command.name} failed; the error is logged.")
            return
        self.flush(ctx.outgoing, requester)
        if ctx.notified:
            self.notified(ctx.notified)

    def role_of(self, ctx: CommandContext) -> Any:
        """The sender's role, asked of the plugin that declares roles (None if none does).

        The resolver sees its own plugin's config (where its roles are configured), not
        that of the command being run, which may be another plugin's or the core's (``!help``).
        """
        if self.role_resolver is None or ctx.sender is None:
            return None
        owner = ctx.with_config(self.plugin_configs.get(self.role_plugin or ""))
        return self.role_resolver(owner, ctx.sender)

    def flush(self, outgoing: Iterable[Outgoing], requester: Requester | None = None) -> None:
        """Send what a unit of work said: as the answer to ``requester``, the person who
        asked; announcements, and all of a job's output (no requester), as the target's own."""
        shares: dict[str, Requester] = {}
        for message in outgoing:
            who = requester
            if who is None or message.announcement:
                key = self.network.fold(message.target)
                who = shares.setdefault(key, Requester(key))
            self.say(message.command, message.target, message.text, requester=who)

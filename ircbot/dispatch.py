"""From a line of chat to a command handler, and from its result to replies.

The path of one command, top to bottom: recognise ``!name`` (anything else costs one
``startswith``) -> find the declaration -> per-person rate limit -> split the arguments by
the declared usage -> resolve the sender's identity and any nick arguments (maybe by WHOIS,
in which case the rest runs when the answer arrives) -> check the role -> run the handler in
one database transaction -> commit -> send the replies it collected and deliver the durable
messages it wrote. A refusal (:class:`~ircbot.errors.Refusal`) is one short reply, and undoes
the command back to its checkpoint (:meth:`~ircbot.context.CommandContext.checkpoint`),
keeping what the bot learnt about the speaker; a crash is one short reply plus the traceback
in the log, and the bot goes on serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from ircbot.catalog import Catalog
from ircbot.clock import Clock
from ircbot.context import CommandContext, NetworkView, Outgoing
from ircbot.errors import Refusal, UsageError
from ircbot.identity import Identity, Target
from ircbot.identity_policy import IdentityPolicy, Status, Who
from ircbot.outbound import OutOfBand
from ircbot.outqueue import Requester
from ircbot.plugin import Command, Plugin, split_args
from ircbot.ratelimit import TokenBucket
from ircbot.resolver import Resolver, WhoisResult
from ircbot.storage import DatabaseBusy, optimistic

__all__ = ["Dispatcher", "RateLimiter"]

logger = logging.getLogger(__name__)

# mIRC formatting: bold, colour (with up to two numbers), hex colour, reset, monospace,
# reverse, italics, strikethrough, underline. Stripped so "\x02!vouch" is still !vouch.
_FORMATTING = re.compile(
    r"\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


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
        policy: IdentityPolicy,
        resolver: Resolver,
        view: NetworkView,
        session_factory: sessionmaker[Session],
        clock: Clock,
        limiter: RateLimiter,
        say: Say,
        notified: Callable[[set[str]], None],
        out_of_band: OutOfBand | None = None,
    ) -> None:
        self.prefix = prefix
        self.policy = policy
        self.resolver = resolver
        self.view = view
        self.session_factory = session_factory
        self.clock = clock
        self.limiter = limiter
        self.say = say
        self.notified = notified
        self.out_of_band = out_of_band or OutOfBand()
        self.plugin_configs = plugin_configs
        self.catalog = Catalog(plugins, prefix=prefix, plugin_configs=plugin_configs)
        self.commands = self.catalog.commands

    @property
    def declared(self) -> list[Command]:
        """Each command once, in declaration order (aliases folded in)."""
        return self.catalog.declared

    def usage_line(self, command: Command) -> str:
        return self.catalog.usage_line(command)

    # -- entry point ----------------------------------------------------------------------
    def on_message(
        self,
        nick: str,
        user: str,
        host: str,
        channel: str | None,
        text: str,
        tags: Mapping[str, str | None],
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
        requester = Requester(self.policy.network.fold(f"{user}@{host}"), nick)

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
                if param.is_nick and isinstance(value, str) and not self.policy.is_name(value):
                    raise UsageError(f"{value!r} is not a nick")
        except UsageError as exc:
            reply(f"{exc}. Usage: {self.usage_line(command)}")
            return
        # Resolved for every command, not only those that require it: a handler may still
        # use who is asking (``!status`` without a nick, ``!help`` by role). If the WHOIS
        # goes unanswered, such a command runs with no sender (see _run).
        policy, fold = self.policy, self.policy.network.fold
        sender = policy.sender(nick, user, host, tags)
        named: dict[int, Who] = {
            i: policy.named(value) or policy.holder(value)
            for i, (param, value) in enumerate(zip(command.params, args, strict=True))
            if param.is_nick and isinstance(value, str)
        }
        if not sender.certain:
            self.resolver.seen(nick)  # they just spoke: whatever was said of the nick is old
        lookups = [] if sender.certain else [nick]
        lookups += [who.nick for who in named.values() if not who.certain]

        def run(results: dict[str, WhoisResult | None]) -> None:
            who = sender
            if not who.certain:  # the answer must be about this line's sender, not a successor
                who = policy.from_whois(nick, results.get(fold(nick)), asker=f"{user}@{host}")
            final: list[Any] = list(args)
            for i, target in named.items():
                if not target.certain:
                    target = policy.from_whois(target.nick, results.get(fold(target.nick)))
                    if not target.certain:
                        reply(f"I couldn't look up {args[i]} just now; try again in a moment.")
                        return
                final[i] = Target(
                    nick=str(args[i]),
                    identity=target.identity,
                    online=target.online,
                    explicit=target.explicit,
                )
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
        sender: Who,
        channel: str | None,
        args: list[Any],
        reply: Callable[[str], None],
        requester: Requester | None = None,
    ) -> None:
        if command.needs_identity and sender.identity is None:
            if sender.status is Status.UNVERIFIED:
                reply("I couldn't verify you just now; try again in a moment.")
            else:
                reply(self.policy.unidentified_reply)
            return

        def attempt(write: bool) -> CommandContext:
            ctx = CommandContext(
                session_factory=self.session_factory,
                config=self.plugin_configs.get(command.plugin),
                clock=self.clock,
                network=self.view,
                write=write,
                nick=nick,
                sender=sender.identity,
                channel=channel,
                prefix=self.prefix,
                out_of_band=self.out_of_band,
                commands=self.catalog,
            )
            try:
                if command.role is not None:
                    ctx.role = self.catalog.role_of(ctx)
                    if not self.catalog.allows(command, ctx.role):
                        # Decided before the command runs: nothing of the request is kept,
                        # not even what the role lookup noted about the speaker.
                        ctx.finish(commit=False)
                        ctx.reply(self._refusal(command, ctx.sender))
                        return ctx
                try:
                    command.handler(ctx, *args)
                except Refusal as refusal:
                    ctx.finish_refused()  # back to the checkpoint; what was kept commits
                    ctx.reply(str(refusal))
                else:
                    ctx.finish(commit=True)
            except BaseException:
                ctx.finish(commit=False)
                raise
            return ctx

        try:
            ctx = optimistic(self.session_factory, attempt)
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

    def _refusal(self, command: Command, sender: Identity | None) -> str:
        only = f"{self.prefix}{command.name} is for {self.catalog.role_name(command.role)}s only."
        if sender is not None and sender.ambiguous:
            masks = ", ".join(sender.ambiguous)
            return (
                f"{only} Your connection matches more than one configured mask ({masks}), "
                "so I can't tell which person you are: ask for the configuration to be fixed."
            )
        return only

    def flush(self, outgoing: Iterable[Outgoing], requester: Requester | None = None) -> None:
        """Send what a unit of work said: as the answer to ``requester``, the person who
        asked; announcements, and all of a job's output (no requester), as the target's own."""
        shares: dict[str, Requester] = {}
        for message in outgoing:
            who = requester
            if who is None or message.announcement:
                key = self.policy.network.fold(message.target)
                who = shares.setdefault(key, Requester(key))
            self.say(message.command, message.target, message.text, requester=who)

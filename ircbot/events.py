"""IRC events into the bot's state: who is where, who is who, who is back, who spoke.

One handler per event the bot cares about, each a few lines that hand the facts of the line
to the piece that keeps them: the network state (:mod:`ircbot.network`), the WHOIS resolver,
the delivery of durable messages (someone it waited for is here), the plugins' ``seen``
handlers and the dispatcher (a message). They subscribe to the transport's reactor at
priority 0: after the transport's own handlers (-10), which keep the connection itself.

Nothing here decides anything: the rules are in the pieces these events feed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from irc.client import Event, Reactor

from ircbot.context import JobContext
from ircbot.delivery import Delivery
from ircbot.identity import Identity
from ircbot.identity_policy import IdentityPolicy
from ircbot.network import NetworkState
from ircbot.resolver import Resolver

__all__ = ["IrcEvents", "OnMessage", "RunInContext", "SeenHandler"]

logger = logging.getLogger(__name__)

OnMessage = Callable[[str, str, str, str | None, str, dict[str, str | None]], None]
"""``(nick, user, host, channel or None, text, tags)``: :meth:`Dispatcher.on_message`."""
SeenHandler = tuple[str, Callable[..., Any]]
"""A plugin's name and its ``seen`` handler ``(ctx, identity, nick)``."""
RunInContext = Callable[[str, str, Callable[[JobContext], Any]], None]
"""``(plugin, what, fn)``: run ``fn`` in one transaction of its own (the plugin runner)."""


def _tags(event: Event) -> dict[str, str | None]:
    return {t["key"]: t["value"] for t in event.tags} if event.tags else {}


def _seen_call(
    handler: Callable[..., Any], ctx: JobContext, *, identity: Identity, nick: str
) -> None:
    handler(ctx, identity, nick)


class IrcEvents:
    """The bot's handlers of IRC events, subscribed to ``reactor`` when built."""

    def __init__(
        self,
        reactor: Reactor,
        *,
        channels: Sequence[str],
        network: NetworkState,
        policy: IdentityPolicy,
        resolver: Resolver,
        delivery: Delivery,
        on_message: OnMessage,
        send: Callable[[str], Any],
        seen_handlers: Sequence[SeenHandler],
        run: RunInContext,
    ) -> None:
        self.channels = list(channels)
        self.network = network
        self.policy = policy
        self.resolver = resolver
        self.delivery = delivery
        self.on_message = on_message
        self.send = send
        self.seen_handlers = list(seen_handlers)
        self.run = run
        handlers: dict[str, Callable[[Any, Event], None]] = {
            "pubmsg": self._on_pubmsg,
            "privmsg": self._on_privmsg,
            "featurelist": self._on_isupport,
            "welcome": self._on_welcome,
            "disconnect": self._on_disconnect,
            "join": self._on_join,
            "part": self._on_part,
            "kick": self._on_kick,
            "quit": self._on_quit,
            "nick": self._on_nick,
            "account": self._on_account,
            "away": self._on_away,
            "chghost": self._on_chghost,
            "namreply": self._on_names,
            "whoreply": self._on_whoreply,
            "whospcrpl": self._on_whox,
            "whoisuser": lambda c, e: resolver.on_whois_user(*e.arguments[:3]),
            "whoisaccount": lambda c, e: resolver.on_whois_account(*e.arguments[:2]),
            "nosuchnick": lambda c, e: resolver.on_no_such_nick(e.arguments[0]),
            "endofwhois": lambda c, e: resolver.on_end_of_whois(e.arguments[0]),
        }
        for event, handler in handlers.items():
            reactor.add_global_handler(event, handler, 0)

    # -- messages ---------------------------------------------------------------------------
    def _on_pubmsg(self, connection: Any, event: Event) -> None:
        src = event.source
        self.on_message(
            src.nick, src.user, src.host, event.target, event.arguments[0], _tags(event)
        )

    def _on_privmsg(self, connection: Any, event: Event) -> None:
        src = event.source
        if not src.user:  # from a server, not a person
            return
        self.on_message(src.nick, src.user, src.host, None, event.arguments[0], _tags(event))

    # -- the connection ---------------------------------------------------------------------
    def _on_isupport(self, connection: Any, event: Event) -> None:
        # Not every 005 line carries CASEMAPPING, and jaraco keeps only the tokens it saw.
        name = getattr(connection.features, "casemapping", None)
        if name is not None:
            self.network.set_casemapping(name)

    def _on_welcome(self, connection: Any, event: Event) -> None:
        """Registered: the server told our nick; join the configured channels."""
        self.network.own_nick = connection.get_nickname()
        for channel in self.channels:
            self.send(f"JOIN {channel}")

    def _on_disconnect(self, connection: Any, event: Event) -> None:
        """Nothing known about anyone is current any more; nothing waited for will come."""
        self.network.reset()
        self.resolver.reset()
        self.delivery.reset()

    # -- channels and people ----------------------------------------------------------------
    def _on_join(self, connection: Any, event: Event) -> None:
        src = event.source
        account = (
            event.arguments[0] if "extended-join" in self.network.caps and event.arguments else None
        )
        self.network.on_join(src.nick, src.user, src.host, event.target, account)
        self.resolver.seen(src.nick)
        if self.network.is_me(src.nick):
            whox = getattr(connection.features, "whox", None) is not None
            self.send(f"WHO {event.target} %tnuhaf,42" if whox else f"WHO {event.target}")
            logger.info("joined %s", event.target)
        else:
            self._seen(src.nick, fresh=account is not None)
            self.delivery.on_seen(src.nick)

    def _on_part(self, connection: Any, event: Event) -> None:
        self.network.on_part(event.source.nick, event.target)

    def _on_kick(self, connection: Any, event: Event) -> None:
        kicked = event.arguments[0]
        self.network.on_kick(event.target, kicked)
        if self.network.is_me(kicked):
            logger.warning("kicked from %s; rejoining", event.target)
            self.send(f"JOIN {event.target}")

    def _on_quit(self, connection: Any, event: Event) -> None:
        self.resolver.cancel(event.source.nick)
        self.network.on_quit(event.source.nick)

    def _on_nick(self, connection: Any, event: Event) -> None:
        self.resolver.cancel(event.source.nick)
        self.resolver.cancel(event.target)
        self.network.on_nick(event.source.nick, event.target)
        self._seen(event.target)
        self.delivery.on_seen(event.target)

    def _on_account(self, connection: Any, event: Event) -> None:
        self.network.on_account(event.source.nick, event.target)
        self._seen(event.source.nick)
        self.delivery.on_seen(event.source.nick)

    def _on_away(self, connection: Any, event: Event) -> None:
        nick = event.source.nick if event.source and event.source.user else None
        if nick is None:  # 301 RPL_AWAY: "<me> <nick> :message"
            self.resolver.on_whois_away(event.arguments[0])
            return
        back = not event.target and not event.arguments
        self.network.on_away(nick, not back)
        if back:
            self.delivery.on_seen(nick)

    def _on_chghost(self, connection: Any, event: Event) -> None:
        self.network.on_chghost(event.source.nick, event.target, event.arguments[0])
        self._seen(event.source.nick)

    def _on_names(self, connection: Any, event: Event) -> None:
        self.network.on_names(event.arguments[1], event.arguments[2])

    def _on_whoreply(self, connection: Any, event: Event) -> None:
        channel, user, host, _server, nick, flags = event.arguments[:6]
        self.network.on_who(channel, nick, user, host, flags, None)
        self._seen(nick)
        self.delivery.on_seen(nick)

    def _on_whox(self, connection: Any, event: Event) -> None:
        if len(event.arguments) < 6 or event.arguments[0] != "42":
            return
        _token, user, host, nick, flags, account = event.arguments[:6]
        self.network.on_who("", nick, user, host, flags, account)
        self._seen(nick, fresh=True)
        self.delivery.on_seen(nick, fresh=True)

    def _seen(self, nick: str, *, fresh: bool = False) -> None:
        """Tell the plugins' ``seen`` handlers who holds ``nick``, now that the bot knows.

        Only for someone in a shared channel whose identity is certain, or ``fresh``: told by
        the server on this very line (extended-join, WHOX). Each handler runs in a transaction
        of its own, opened only if it touches the database: most lines change nothing.
        """
        if not self.seen_handlers or self.network.is_me(nick):
            return
        user = self.network.get(nick)
        if user is None or not user.channels or not (fresh or self.policy.certain(user)):
            return
        identity = self.policy.identity_of(user)
        if identity is None:
            return
        for plugin, handler in self.seen_handlers:
            self.run(
                plugin,
                f"seen {nick}",
                functools.partial(_seen_call, handler, identity=identity, nick=nick),
            )

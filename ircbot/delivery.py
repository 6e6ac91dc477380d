"""Delivering the outbox: each durable message reaches its person once they can read it.

A message waits while its recipient is offline, away or not identifiable. The bot tries again
whenever that may have changed: after the command or job that wrote it, when someone joins,
changes nick, logs in to services or comes back from away, when its WHO/WHOIS answers arrive,
and on a periodic sweep (the only way to see "back from away" on a server without
``away-notify``). Before sending, the recipient is checked: if the server does not keep the
bot told (``account-notify`` and ``away-notify``), a WHOIS confirms the nick still belongs to
that person and that they are not away.

Without ``extended-join``/``account-notify`` the bot may share a channel with a recipient
and not know it: their account was never told. Then it asks for the channels' accounts
(``refresh``: one WHOX per channel, throttled by the bot) and WHOISes only the members whose
fresh account has something waiting.

A row is marked delivered in the callback the output queue runs once its line is on the
socket. A crash between the two repeats a message; no message is ever marked before it went.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from ircbot import outbox
from ircbot.clock import Clock
from ircbot.identity_policy import AccountPolicy, IdentityPolicy
from ircbot.network import User
from ircbot.outqueue import OnSent
from ircbot.resolver import Resolver, WhoisResult
from ircbot.storage import is_busy, reading, transaction

__all__ = ["Delivery"]

logger = logging.getLogger(__name__)

DeliveredHook = Callable[[Session, outbox.OutboxMessage], None]


class Delivery:
    """Watches for recipients becoming reachable and sends what waits for them."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        policy: IdentityPolicy,
        resolver: Resolver,
        say: Callable[[str, str, str, OnSent | None], None],
        delivered_hooks: Iterable[DeliveredHook] = (),
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.policy = policy
        self.network = policy.network
        self.resolver = resolver
        self.say = say
        self.delivered_hooks = list(delivered_hooks)
        self.refresh = refresh
        self.pending: set[str] = set()
        self._in_flight: set[int] = set()
        self._checking: set[str] = set()

    def load(self) -> None:
        """Learn who has messages waiting (after a restart, the rows are all there is)."""
        with reading(self.session_factory) as session:
            self.pending = outbox.pending_recipients(session)
        if self.pending:
            logger.info("%d people have messages waiting", len(self.pending))

    def notified(self, keys: Iterable[str]) -> None:
        """New messages were committed for these people: try them now."""
        for key in keys:
            self.pending.add(key)
            self.attempt(key)

    def sweep(self) -> None:
        """Try everyone with something waiting (periodic; catches 'back from away').

        Who has something waiting is read again from the outbox first: rows another process
        wrote (``ircbot trainee import`` from the shell while the bot runs) would otherwise
        wait for a restart, or for the next message to the same person written by the bot.
        """
        try:
            with reading(self.session_factory) as session:
                self.pending |= outbox.pending_recipients(session)
        except Exception as exc:
            if not is_busy(exc):
                raise
            logger.warning("database busy: the sweep tries whom it already knew of")
        for key in list(self.pending):
            self.attempt(key)

    def reset(self) -> None:
        """Disconnected: lines in flight were dropped and will be sent again."""
        self._in_flight.clear()
        self._checking.clear()

    # -- arrival events -------------------------------------------------------------------
    def on_seen(self, nick: str, *, fresh: bool = False) -> None:
        """Someone joined, changed nick, logged in, came back, or showed up in a WHO.

        ``fresh``: the server told their account just now (a WHOX reply), so even where it
        is not kept current, only someone with messages waiting is worth a WHOIS.
        """
        if not self.pending:
            return
        user = self.network.get(nick)
        if user is None or not user.channels:
            return
        if self.policy.certain(user):
            key = self.policy.key_of(user)
            if key in self.pending:
                self.attempt(key)
        elif not fresh or self.policy.key_of(user) in self.pending:
            self._verify_then_send(user, None)

    def attempt(self, key: str) -> None:
        if key not in self.pending:
            return
        users = list(self.policy.users_with_key(key))
        if not users and isinstance(self.policy, AccountPolicy):
            # Someone present whose account we don't know may be them: ask the channels
            # (throttled; the WHOX answers come back through on_seen). Otherwise wait until
            # they are seen (JOIN/NICK/ACCOUNT/WHO).
            if self.refresh is not None:
                self.refresh()
            return
        for user in users:
            if self._trusted_now(user):
                if user.away is not True:
                    self._send_all(key, user.nick)
                    return
            else:
                self._verify_then_send(user, key)
                return

    def _trusted_now(self, user: User) -> bool:
        """Identity certain and away status kept current by the server."""
        return self.policy.certain(user) and "away-notify" in self.network.caps

    def _verify_then_send(self, user: User, key: str | None) -> None:
        folded = self.network.fold(user.nick)
        if folded in self._checking:
            return
        self._checking.add(folded)

        def checked(results: dict[str, WhoisResult | None]) -> None:
            self._checking.discard(folded)
            result = results.get(folded)
            who = self.policy.from_whois(user.nick, result)
            if result is None or result.away or who.identity is None:
                return
            key_now = who.identity.key
            if key_now in self.pending and (key is None or key_now == key):
                self._send_all(key_now, result.nick)

        self.resolver.resolve([user.nick], checked)

    # -- sending --------------------------------------------------------------------------
    def _send_all(self, key: str, nick: str) -> None:
        with reading(self.session_factory) as session:
            messages = outbox.pending_for(session, key)
        if not messages:
            self.pending.discard(key)
            return
        for message in messages:
            if message.id in self._in_flight:
                continue
            self._in_flight.add(message.id)
            self.say("PRIVMSG", nick, message.text, self._on_sent_callback(message.id, key))

    def _on_sent_callback(self, message_id: int, key: str) -> OnSent:
        def sent() -> None:
            self._in_flight.discard(message_id)
            try:
                with transaction(self.session_factory) as session:
                    if outbox.mark_delivered(session, message_id, self.clock.now()):
                        message = session.get(outbox.OutboxMessage, message_id)
                        if message is not None:
                            for hook in self.delivered_hooks:
                                hook(session, message)
                    remaining = outbox.pending_for(session, key)
            except Exception as exc:
                if not is_busy(exc):
                    logger.exception("could not record delivery of outbox message %d", message_id)
                else:  # still pending: sent again later, a repeat rather than a loss
                    logger.warning("database busy: delivery of message %d not recorded", message_id)
                return
            if not remaining:
                self.pending.discard(key)

        return sent

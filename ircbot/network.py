"""What the bot knows about the network: who is where, under which nick, account and host.

The state is fed by events (JOIN, PART, KICK, QUIT, NICK, ACCOUNT, AWAY, CHGHOST, WHO/WHOX
replies) and answers three questions: which identity holds a nick now, how to reach a person
(identity key -> nicks), and whether they would read a message now (in a shared channel,
not away). Nicks and channels are folded with the server's CASEMAPPING before they are used
as keys; identity keys with :func:`~ircbot.identity.identity_key`, the same on every server.

An account learned here is only *certain* while the server tells us when it changes
(``account-notify``); without it an account seen at JOIN may be stale, and the resolver asks
WHOIS instead of trusting it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ircbot.casemapping import CaseMapping
from ircbot.identity import Identity, identity_key

__all__ = ["NetworkState", "User"]

logger = logging.getLogger(__name__)


@dataclass
class User:
    """One nick the bot shares a channel with (or has looked up)."""

    nick: str
    user: str = ""
    host: str = ""
    account: str | None = None
    account_certain: bool = False
    away: bool | None = None
    channels: set[str] = field(default_factory=set)


class NetworkState:
    """Users and channels as seen from the bot's connection."""

    def __init__(self, identity_mode: str, channels: Iterable[str] = ()) -> None:
        self.identity_mode = identity_mode
        self.casemapping = CaseMapping.from_name(None)
        self.caps: set[str] = set()
        self.users: dict[str, User] = {}
        self.joined: set[str] = set()
        self.configured_channels = list(channels)
        self.own_nick = ""

    # -- names ----------------------------------------------------------------------------
    def fold(self, name: str) -> str:
        return self.casemapping.fold(name)

    def match(self, mask: str, value: str) -> bool:
        return self.casemapping.match(mask, value)

    def set_casemapping(self, name: object) -> None:
        """Re-key everything when ISUPPORT tells the real CASEMAPPING.

        An unknown name folds as ascii (see :mod:`ircbot.casemapping`); that is logged when
        the mapping changes, so once, however many ISUPPORT lines repeat it.
        """
        mapping = CaseMapping.from_name(name)
        if mapping == self.casemapping:
            return
        if name is not None and not CaseMapping.known(name):
            logger.warning(
                "the server's CASEMAPPING %r is unknown: folding nicks as ascii, which never "
                "merges two nicks the server keeps apart",
                str(name),
            )
        self.casemapping = mapping
        self.users = {self.fold(u.nick): u for u in self.users.values()}
        for u in self.users.values():
            u.channels = {self.fold(c) for c in u.channels}
        self.joined = {self.fold(c) for c in self.joined}

    def is_me(self, nick: str) -> bool:
        return self.fold(nick) == self.fold(self.own_nick)

    @property
    def home_channel(self) -> str | None:
        return self.configured_channels[0] if self.configured_channels else None

    # -- identity ---------------------------------------------------------------------------
    def key_of(self, user: User) -> str | None:
        """The identity key of a tracked user, or None if they have none (not logged in)."""
        if self.identity_mode == "hostmask":
            return identity_key(f"{user.user}@{user.host}") if user.host else None
        return identity_key(user.account) if user.account else None

    def identity_of(self, user: User) -> Identity | None:
        key = self.key_of(user)
        if key is None:
            return None
        return Identity(
            key=key, nick=user.nick, user=user.user, host=user.host, account=user.account
        )

    def certain(self, user: User) -> bool:
        """Whether what we hold about this user's identity can be trusted without asking."""
        if self.identity_mode == "hostmask":
            return bool(user.host)
        return user.account_certain and "account-notify" in self.caps

    def get(self, nick: str) -> User | None:
        return self.users.get(self.fold(nick))

    def identify(self, nick: str) -> Identity | None:
        """Who holds ``nick`` now, from tracked state only (see :mod:`ircbot.resolver`)."""
        user = self.get(nick)
        return self.identity_of(user) if user and self.certain(user) else None

    def users_with_key(self, key: str) -> Iterator[User]:
        for user in self.users.values():
            if user.channels and self.key_of(user) == key:
                yield user

    def nick_of(self, key: str) -> str | None:
        return next((u.nick for u in self.users_with_key(key)), None)

    def is_reachable(self, key: str) -> bool:
        return any(u.away is not True for u in self.users_with_key(key))

    # -- events ---------------------------------------------------------------------------
    def _user(self, nick: str, user: str = "", host: str = "") -> User:
        folded = self.fold(nick)
        entry = self.users.get(folded)
        if entry is None:
            entry = self.users[folded] = User(nick=nick)
        if user:
            entry.user = user
        if host:
            entry.host = host
        return entry

    def on_join(self, nick: str, user: str, host: str, channel: str, account: str | None) -> User:
        """A JOIN; ``account`` is extended-join's account (``*`` = none), None if not sent."""
        chan = self.fold(channel)
        if self.is_me(nick):
            self.joined.add(chan)
        entry = self._user(nick, user, host)
        entry.channels.add(chan)
        if account is not None:
            entry.account = None if account == "*" else account
            entry.account_certain = True
        return entry

    def _forget_if_alone(self, entry: User) -> None:
        if not entry.channels:
            self.users.pop(self.fold(entry.nick), None)

    def on_part(self, nick: str, channel: str) -> None:
        chan = self.fold(channel)
        if self.is_me(nick):
            self._left(chan)
            return
        entry = self.get(nick)
        if entry:
            entry.channels.discard(chan)
            self._forget_if_alone(entry)

    def _left(self, chan: str) -> None:
        self.joined.discard(chan)
        for entry in list(self.users.values()):
            entry.channels.discard(chan)
            self._forget_if_alone(entry)

    def on_quit(self, nick: str) -> None:
        self.users.pop(self.fold(nick), None)

    def on_nick(self, old: str, new: str) -> None:
        if self.is_me(old):
            self.own_nick = new
        entry = self.users.pop(self.fold(old), None)
        if entry:
            entry.nick = new
            self.users[self.fold(new)] = entry

    def on_account(self, nick: str, account: str) -> User | None:
        entry = self.get(nick)
        if entry:
            entry.account = None if account == "*" else account
            entry.account_certain = True
        return entry

    def on_away(self, nick: str, away: bool) -> User | None:
        entry = self.get(nick)
        if entry:
            entry.away = away
        return entry

    def on_chghost(self, nick: str, user: str, host: str) -> None:
        entry = self.get(nick)
        if entry:
            entry.user, entry.host = user, host

    def on_names(self, channel: str, names: str) -> None:
        """353 RPL_NAMREPLY: nicks with status prefixes (and user@host with userhost-in-names)."""
        chan = self.fold(channel)
        for item in names.split():
            item = item.lstrip("~&@%+!.")
            nick, _, rest = item.partition("!")
            user, _, host = rest.partition("@")
            if nick:
                self._user(nick, user, host).channels.add(chan)

    def on_who(
        self, channel: str, nick: str, user: str, host: str, flags: str, account: str | None
    ) -> User:
        """352 or 354 (WHOX): refreshes host, away flag and, with WHOX, the account."""
        entry = self._user(nick, user, host)
        if channel and channel != "*" and self.fold(channel) in self.joined:
            entry.channels.add(self.fold(channel))
        entry.away = flags.startswith("G")
        if account is not None:
            entry.account = None if account in ("0", "*", "") else account
            entry.account_certain = True
        return entry

    def on_kick(self, channel: str, nick: str) -> None:
        self.on_part(nick, channel)

    def reset(self) -> None:
        """The connection is gone: nothing we knew about anyone is current any more."""
        self.users.clear()
        self.joined.clear()
        self.caps = set()

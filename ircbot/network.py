"""What the bot knows about the network: who is where, under which nick, account and host.

Pure tracking, fed by events (JOIN, PART, KICK, QUIT, NICK, ACCOUNT, AWAY, CHGHOST, WHO/WHOX
and WHOIS replies). *Who a person is* is not decided here but by the identity policy
(:mod:`ircbot.identity_policy`), which reads these facts. Nicks and channels are folded with
the server's CASEMAPPING before they are used as keys.

Two indexes answer "which nicks does this account (or this ``user@host``) use here" in one
lookup, so that finding the recipients of waiting messages costs one lookup per recipient,
not a scan of every channel member per recipient.

An account learned here is only *certain* (``account_certain``) when the server said so on
a line that carries it (extended-join, ACCOUNT, WHOX); whether that stays true depends on
``account-notify``, which the policy checks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ircbot.casemapping import CaseMapping
from ircbot.identity import identity_key

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

    def __init__(self, channels: Iterable[str] = ()) -> None:
        self.casemapping = CaseMapping.from_name(None)
        # Enabled on the connection: the transport's negotiation fills this very set.
        self.caps: set[str] = set()
        self.users: dict[str, User] = {}
        self.joined: set[str] = set()
        self.configured_channels = list(channels)
        self.own_nick = ""
        self._by_account: dict[str, set[str]] = {}
        self._by_userhost: dict[str, set[str]] = {}

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
        self._reindex()

    def is_me(self, nick: str) -> bool:
        return self.fold(nick) == self.fold(self.own_nick)

    @property
    def home_channel(self) -> str | None:
        return self.configured_channels[0] if self.configured_channels else None

    # -- lookups --------------------------------------------------------------------------
    def get(self, nick: str) -> User | None:
        return self.users.get(self.fold(nick))

    def users_by_account(self, key: str) -> list[User]:
        """Tracked users logged in to the account whose identity key is ``key``."""
        return [self.users[n] for n in self._by_account.get(key, ()) if n in self.users]

    def users_by_userhost(self, key: str) -> list[User]:
        """Tracked users whose ``user@host``, as an identity key, is ``key``."""
        return [self.users[n] for n in self._by_userhost.get(key, ()) if n in self.users]

    # -- the indexes ------------------------------------------------------------------------
    @staticmethod
    def _keys(entry: User) -> tuple[str | None, str | None]:
        account = identity_key(entry.account) if entry.account else None
        userhost = identity_key(f"{entry.user}@{entry.host}") if entry.host else None
        return account, userhost

    def _unindex(self, entry: User) -> None:
        folded = self.fold(entry.nick)
        account, userhost = self._keys(entry)
        for index, key in ((self._by_account, account), (self._by_userhost, userhost)):
            if key is not None and (nicks := index.get(key)) is not None:
                nicks.discard(folded)
                if not nicks:
                    del index[key]

    def _index(self, entry: User) -> None:
        folded = self.fold(entry.nick)
        account, userhost = self._keys(entry)
        if account is not None:
            self._by_account.setdefault(account, set()).add(folded)
        if userhost is not None:
            self._by_userhost.setdefault(userhost, set()).add(folded)

    def _reindex(self) -> None:
        self._by_account.clear()
        self._by_userhost.clear()
        for entry in self.users.values():
            self._index(entry)

    def set_account(self, nick: str, account: str | None, *, certain: bool) -> User | None:
        """What the server said of a tracked user's account (None: logged out)."""
        entry = self.get(nick)
        if entry:
            self._unindex(entry)
            entry.account, entry.account_certain = account, certain
            self._index(entry)
        return entry

    # -- events ---------------------------------------------------------------------------
    def _user(self, nick: str, user: str = "", host: str = "") -> User:
        folded = self.fold(nick)
        entry = self.users.get(folded)
        if entry is None:
            entry = self.users[folded] = User(nick=nick)
        if (user and user != entry.user) or (host and host != entry.host):
            self._unindex(entry)
            entry.user, entry.host = user or entry.user, host or entry.host
            self._index(entry)
        return entry

    def on_join(self, nick: str, user: str, host: str, channel: str, account: str | None) -> User:
        """A JOIN; ``account`` is extended-join's account (``*`` = none), None if not sent."""
        chan = self.fold(channel)
        if self.is_me(nick):
            self.joined.add(chan)
        entry = self._user(nick, user, host)
        entry.channels.add(chan)
        if account is not None:
            self.set_account(nick, None if account == "*" else account, certain=True)
        return entry

    def _forget_if_alone(self, entry: User) -> None:
        if not entry.channels:
            self._forget(entry.nick)

    def _forget(self, nick: str) -> None:
        entry = self.users.pop(self.fold(nick), None)
        if entry is not None:
            self._unindex(entry)

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
        self._forget(nick)

    def on_nick(self, old: str, new: str) -> None:
        if self.is_me(old):
            self.own_nick = new
        entry = self.users.pop(self.fold(old), None)
        if entry:
            self._unindex(entry)
            self._forget(new)  # a stale entry under the new nick is someone gone
            entry.nick = new
            self.users[self.fold(new)] = entry
            self._index(entry)

    def on_account(self, nick: str, account: str) -> User | None:
        return self.set_account(nick, None if account == "*" else account, certain=True)

    def on_away(self, nick: str, away: bool) -> User | None:
        entry = self.get(nick)
        if entry:
            entry.away = away
        return entry

    def on_chghost(self, nick: str, user: str, host: str) -> None:
        entry = self.get(nick)
        if entry:
            self._unindex(entry)
            entry.user, entry.host = user, host
            self._index(entry)

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
            self.set_account(nick, None if account in ("0", "*", "") else account, certain=True)
        return entry

    def on_kick(self, channel: str, nick: str) -> None:
        self.on_part(nick, channel)

    def reset(self) -> None:
        """The connection is gone: nothing we knew about anyone is current any more."""
        self.users.clear()
        self.joined.clear()
        self._by_account.clear()
        self._by_userhost.clear()
        self.caps.clear()  # the set is shared with the transport: emptied, not replaced

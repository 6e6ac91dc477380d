"""Who someone is: the one place that decides, for the whole bot.

Trust in this bot rests on identity, so the decision lives here and nowhere else. Everything
that needs to know who speaks, whom a nick names, or how to reach a person asks an
:class:`IdentityPolicy`; the network state (:mod:`ircbot.network`) only tracks who is where,
and the resolver (:mod:`ircbot.resolver`) only asks the server WHOIS.

Two policies, one chosen at start by ``[bot] identity``:

:class:`AccountPolicy` (networks with services)
    A person is their services account. The bot learns it from the ``account`` tag on the
    line (with ``account-tag`` a line without the tag is from someone logged out), from
    state the server keeps current (``extended-join`` + ``account-notify``, WHOX), or from a
    WHOIS (numeric 330) whose 311 reply shows the same ``user@host`` as the line that asked.
    No account, no identity: a nick alone is never enough.
:class:`HostmaskPolicy` (networks without services)
    A person is the ``user@host`` of their connection, except that whoever matches exactly
    one configured ``nick!user@host`` mask *is* that mask entry, whatever their ident or
    nick: one helper named by ``bob!*@bob.example`` stays one helper after reconnecting as
    ``~x1`` and ``~x2``. A connection matching two entries is nobody in particular: it keeps
    its ``user@host`` identity and gets no role (see :attr:`Identity.ambiguous`).

Every answer is a :class:`Who`: identified (certain, with an :class:`Identity`), anonymous
(online, certainly not identified), offline, or unverified (the bot cannot tell without
asking the server, or the server did not answer in time). Only an identified answer ever
carries an identity, so nothing downstream can mistake "unknown" for "someone".

Commands may also name a person explicitly instead of by nick: ``account:NAME`` in account
mode, a configured mask or a ``user@host`` in hostmask mode (:meth:`IdentityPolicy.named`).
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ircbot.identity import Identity, identity_key
from ircbot.network import NetworkState, User
from ircbot.resolver import WhoisResult

__all__ = [
    "AccountPolicy",
    "HostmaskPolicy",
    "IdentityPolicy",
    "Status",
    "Who",
    "make_policy",
]

# RFC 2812's nick grammar, with the length servers actually allow today.
NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,49}$")
# Services account names: what Atheme, Anope and Ergo accept, no spaces or control codes.
_ACCOUNT = re.compile(r"^[A-Za-z0-9\[\]\\`_^{|}.\-]{1,64}$")
_MASK = re.compile(r"^[^\s\x00-\x1f\x7f,]{1,200}$")


class Status(enum.Enum):
    """How far the bot can tell who holds a nick."""

    IDENTIFIED = "identified"  # certain: this identity
    ANONYMOUS = "anonymous"  # certain: online, but not identified (not logged in)
    OFFLINE = "offline"  # certain: nobody holds the nick
    UNVERIFIED = "unverified"  # not certain: ask the server, or it did not answer in time


@dataclass(frozen=True)
class Who:
    """One answer of the policy about one nick (or one explicitly named identity)."""

    nick: str
    status: Status
    identity: Identity | None = None
    explicit: bool = False  # named as account:NAME or by mask, not by a nick

    def __post_init__(self) -> None:
        if (self.status is Status.IDENTIFIED) != (self.identity is not None):
            raise ValueError("an identity comes with IDENTIFIED, and only with it")

    @property
    def certain(self) -> bool:
        return self.status is not Status.UNVERIFIED

    @property
    def online(self) -> bool:
        return self.status in (Status.IDENTIFIED, Status.ANONYMOUS) and not self.explicit

    @classmethod
    def of(cls, nick: str, identity: Identity | None) -> Who:
        """Someone online: identified if ``identity``, else anonymous."""
        if identity is None:
            return cls(nick, Status.ANONYMOUS)
        return cls(nick, Status.IDENTIFIED, identity)

    @classmethod
    def unverified(cls, nick: str) -> Who:
        return cls(nick, Status.UNVERIFIED)


class IdentityPolicy(ABC):
    """Answers who a line's sender is, whom a nick names now, and how to reach a person."""

    mode: str
    unidentified_reply: str

    def __init__(self, network: NetworkState) -> None:
        self.network = network

    # -- the three questions ------------------------------------------------------------
    @abstractmethod
    def sender(self, nick: str, user: str, host: str, tags: Mapping[str, str | None]) -> Who:
        """Who sent a line, from the line and tracked state; UNVERIFIED means ask WHOIS."""

    def holder(self, nick: str) -> Who:
        """Who holds ``nick`` now, from tracked state; UNVERIFIED means ask WHOIS."""
        tracked = self.network.get(nick)
        if tracked is None or not self.certain(tracked):
            return Who.unverified(nick)
        return Who.of(tracked.nick, self.identity_of(tracked))

    def from_whois(self, nick: str, result: WhoisResult | None, asker: str | None = None) -> Who:
        """What a finished WHOIS proves. ``asker`` is the ``user@host`` of the line that
        asked about its own sender: an answer about anyone else (the nick changed hands
        while the WHOIS was out) proves nothing about that sender."""
        if result is None:
            return Who.unverified(nick)
        if not result.online:
            return Who(nick, Status.OFFLINE)
        if not result.host:
            return Who.unverified(nick)
        if asker is not None and self.network.fold(f"{result.user}@{result.host}") != (
            self.network.fold(asker)
        ):
            return Who.unverified(nick)
        return Who.of(result.nick, self.whois_identity(result))

    @abstractmethod
    def whois_identity(self, result: WhoisResult) -> Identity | None:
        """The identity a WHOIS of someone online shows (None: not identified)."""

    @abstractmethod
    def named(self, value: str) -> Who | None:
        """An explicitly named identity (``account:NAME``, a mask), or None if ``value``
        is not such a name. The answer is IDENTIFIED with ``explicit`` set."""

    def is_name(self, value: str) -> bool:
        """Whether a command argument can name a person: a nick, or an explicit identity."""
        return bool(NICK.match(value)) or self.named(value) is not None

    # -- tracked users --------------------------------------------------------------------
    @abstractmethod
    def identity_of(self, user: User) -> Identity | None:
        """The identity of a tracked user (None: not identified)."""

    @abstractmethod
    def certain(self, user: User) -> bool:
        """Whether what is tracked about this user's identity can be trusted without asking."""

    def key_of(self, user: User) -> str | None:
        identity = self.identity_of(user)
        return identity.key if identity else None

    @abstractmethod
    def users_with_key(self, key: str) -> Iterator[User]:
        """Users in a shared channel who are the person ``key`` (an index lookup)."""

    def nick_of(self, key: str) -> str | None:
        return next((u.nick for u in self.users_with_key(key)), None)

    def is_reachable(self, key: str) -> bool:
        """In a shared channel and not away: a message now would be read."""
        return any(u.away is not True for u in self.users_with_key(key))


class AccountPolicy(IdentityPolicy):
    mode = "account"
    unidentified_reply = "Log in to services first (I trust accounts, not nicks), then try again."

    def sender(self, nick: str, user: str, host: str, tags: Mapping[str, str | None]) -> Who:
        if "account-tag" in self.network.caps:
            # With account-tag the server tags every line of a logged-in user: no tag, no account.
            account = tags.get("account")
            if account and account != "*":
                return Who.of(nick, self._identity(nick, user, host, account))
            return Who(nick, Status.ANONYMOUS)
        tracked = self.network.get(nick)
        if (
            tracked is not None
            and self.certain(tracked)
            and self.network.fold(f"{tracked.user}@{tracked.host}")
            == self.network.fold(f"{user}@{host}")
        ):
            return Who.of(nick, self.identity_of(tracked))
        return Who.unverified(nick)

    def whois_identity(self, result: WhoisResult) -> Identity | None:
        if not result.account:
            return None
        return self._identity(result.nick, result.user, result.host, result.account)

    def named(self, value: str) -> Who | None:
        scheme, colon, name = value.partition(":")
        if not colon or scheme.lower() != "account" or not _ACCOUNT.match(name):
            return None
        identity = Identity(key=identity_key(name), nick=name, user="", host="", account=name)
        return Who(value, Status.IDENTIFIED, identity, explicit=True)

    def identity_of(self, user: User) -> Identity | None:
        if not user.account:
            return None
        return self._identity(user.nick, user.user, user.host, user.account)

    def certain(self, user: User) -> bool:
        return user.account_certain and "account-notify" in self.network.caps

    def users_with_key(self, key: str) -> Iterator[User]:
        return (u for u in self.network.users_by_account(key) if u.channels)

    @staticmethod
    def _identity(nick: str, user: str, host: str, account: str) -> Identity:
        return Identity(key=identity_key(account), nick=nick, user=user, host=host, account=account)


class HostmaskPolicy(IdentityPolicy):
    mode = "hostmask"
    unidentified_reply = "I can't identify you; ask a coordinator."

    def __init__(self, network: NetworkState, masks: Sequence[str] = ()) -> None:
        super().__init__(network)
        # A mask without a nick part names any nick: "user@host" is "*!user@host".
        self.masks = tuple(dict.fromkeys(masks))
        self._mask_keys = {identity_key(m): m for m in self.masks}

    def sender(self, nick: str, user: str, host: str, tags: Mapping[str, str | None]) -> Who:
        return Who.of(nick, self._identity(nick, user, host))

    def whois_identity(self, result: WhoisResult) -> Identity | None:
        return self._identity(result.nick, result.user, result.host)

    def named(self, value: str) -> Who | None:
        if "@" not in value or not _MASK.match(value):
            return None
        entry = self._mask_keys.get(identity_key(value))
        key = identity_key(entry or value)
        nick, _, userhost = value.rpartition("!")
        user, _, host = userhost.partition("@")
        identity = Identity(key=key, nick=nick or value, user=user, host=host, mask_entry=entry)
        return Who(value, Status.IDENTIFIED, identity, explicit=True)

    def identity_of(self, user: User) -> Identity | None:
        return self._identity(user.nick, user.user, user.host)

    def certain(self, user: User) -> bool:
        return bool(user.host)

    def matching(self, nick: str, user: str, host: str) -> list[str]:
        """The configured masks this connection matches, in configuration order."""
        full = f"{nick}!{user}@{host}"
        match = self.network.match
        return [m for m in self.masks if match(m if "!" in m else f"*!{m}", full)]

    def users_with_key(self, key: str) -> Iterator[User]:
        if key in self._mask_keys:  # a handful of entries: look at who is present
            users: Iterator[User] = iter(list(self.network.users.values()))
        else:
            users = iter(self.network.users_by_userhost(key))
        return (u for u in users if u.channels and self.key_of(u) == key)

    def _identity(self, nick: str, user: str, host: str) -> Identity | None:
        if not host:
            return None
        matched = self.matching(nick, user, host) if self.masks else []
        if len(matched) == 1:
            key = identity_key(matched[0])
            return Identity(key=key, nick=nick, user=user, host=host, mask_entry=matched[0])
        key = identity_key(f"{user}@{host}")
        return Identity(key=key, nick=nick, user=user, host=host, ambiguous=tuple(matched))


def make_policy(mode: str, network: NetworkState, masks: Sequence[str] = ()) -> IdentityPolicy:
    """The policy ``[bot] identity`` names; ``masks`` are the configured role masks."""
    if mode == "hostmask":
        return HostmaskPolicy(network, masks)
    if mode == "account":
        return AccountPolicy(network)
    raise ValueError(f"unknown identity mode {mode!r}")

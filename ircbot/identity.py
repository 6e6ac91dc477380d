"""Who is speaking, as far as the bot can prove it.

A nick proves nothing: anyone can take a free nick, and a nick someone used yesterday may be
someone else's today. Trust is placed in one of two things, chosen by ``[bot] identity``:

``account`` (networks with services, such as Libera.Chat)
    The services account the server vouches for. The bot learns it, in order of preference,
    from the IRCv3 ``account`` message tag on the line itself, from ``extended-join`` /
    ``account-notify`` / WHOX state it tracks, or by asking ``WHOIS`` (numeric 330) and
    holding the command until the answer comes. A user with no account is *not* identified:
    commands that need identity are refused with "log in to services first", never run as if
    the nick were enough.
``hostmask`` (networks without services)
    ``user@host`` of the connection (the nick excluded, since it changes freely); roles may
    be granted to ``nick!user@host`` glob masks. Weaker, and only used when the configuration
    opts into it.

Either way the stored key is :func:`identity_key` of the account or ``user@host``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ircbot.casemapping import CaseMapping

__all__ = ["Identity", "Target", "identity_key"]

_KEY_MAPPING = CaseMapping.from_name("ascii")


def identity_key(name: str) -> str:
    """The key an account name or ``user@host`` is stored and compared under.

    Every place that builds or looks up an identity key goes through here: the resolver and
    the network state (names the server sent), the config seeds and the command line (names
    a person typed). Keys outlive any one connection (seeds are applied before the bot
    connects, the CLI never connects), so they cannot follow the CASEMAPPING a server
    announces: they fold ``A-Z`` only, the ``ascii`` mapping, on every network.

    Why not rfc1459, the protocol's default: folding more than the services do would make
    two accounts one person (``a[b]`` and ``a{b}`` are different accounts where the server's
    mapping is ascii), and an impostor could register the twin of a coordinator's account.
    Folding less costs little: services always name an account in its registered spelling,
    so only a config or command-line name that swaps ``[]\\`` for ``{}|`` goes unmatched.

    >>> identity_key("Alice[m]")
    'alice[m]'
    >>> identity_key("~Late@Host.Example")
    '~late@host.example'
    """
    return _KEY_MAPPING.fold(name)


@dataclass(frozen=True)
class Identity:
    """A verified speaker. ``key`` is what gets stored; ``nick`` is only how to reach them.

    ``mask_entry`` is the configured mask this person is (hostmask mode); ``ambiguous`` the
    masks a connection matched when it matched more than one, and so is none of them.
    """

    key: str
    nick: str
    user: str
    host: str
    account: str | None = None
    mask_entry: str | None = None
    ambiguous: tuple[str, ...] = ()

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"


@dataclass(frozen=True)
class Target:
    """A person named in a command: by a nick, resolved to whoever holds it now, or
    ``explicit``-ly by identity (``account:NAME``, a mask), whether online or not.

    ``identity`` is None when nobody online holds the nick, or when its holder cannot be
    identified (not logged in). ``online`` tells the two apart.
    """

    nick: str
    identity: Identity | None
    online: bool
    explicit: bool = False

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
    ``user@host`` of the connection (the nick excluded, since it changes freely), folded with
    the server's casemapping; roles may be granted to ``nick!user@host`` glob masks. Weaker,
    and only used when the configuration opts into it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Identity", "Target"]


@dataclass(frozen=True)
class Identity:
    """A verified speaker. ``key`` is what gets stored; ``nick`` is only how to reach them."""

    key: str
    nick: str
    user: str
    host: str
    account: str | None = None

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"


@dataclass(frozen=True)
class Target:
    """A nick named in a command, resolved to whoever holds it now.

    ``identity`` is None when nobody online holds the nick, or when its holder cannot be
    identified (not logged in). ``online`` tells the two apart.
    """

    nick: str
    identity: Identity | None
    online: bool

"""What a ``nick!user@host`` mask in the configuration may grant, checked before it is used.

In hostmask mode (``[bot] identity = "hostmask"``) a role can be granted to a glob mask
(``*`` any run of characters, ``?`` one). Of the mask's three parts only one is worth
anything as proof of who is connecting:

- the **nick** is free: anyone can take a nick nobody is using;
- the **user** (ident) is chosen by the client, unless the connecting host runs an ident
  server, and then the server shows it without the ``~`` it puts before an unchecked one;
- the **host** is what the server saw (its name or address, or a cloak the network gives).

Hence the two rules here.

Refused, in every mode: a mask that **matches any host**, i.e. whose host part has no
literal character besides the separators ``.`` and ``:`` (``*!*@*``, ``*@*``, ``*!*@*.*``,
``*!*@**``, ``?*!*@*``, ``Alice!*@*``, ``*!~carol@*``). Such a mask matches whoever picks
that nick and user name, which is everyone; ``*.*`` or ``*:*`` is no limit, every host name
has a dot and every IPv6 address a colon. A host part with any fixed character
(``*.staff.example``, ``203.0.113.*``) names a set of hosts someone chose, and is allowed.

Warned about: an **unfixed ident on a shared host**. The ident is unfixed when it starts with
``~`` (the server could not check it) or holds a wildcard. The host is shared when the mask
covers several hosts (a wildcard in the host part) or names a gateway cloak
(``gateway/...``, as Libera.Chat and OFTC give web and shell gateways), where many people
connect from the one host. There anyone on those hosts may present that ident, so the mask
is no better than the nick; it is allowed, since a small network may have no better, but the
operator is told. A single host name or address is not counted as shared: whoever runs it
decides who connects from it.

A mask is well-formed when it is ``nick!user@host`` or ``user@host`` (read as ``*!user@host``),
with exactly one ``!`` before exactly one ``@`` and no spaces: ``alice!bob`` would match no
connection, ``a@b@c`` is ambiguous, and both are typing mistakes worth stopping.

>>> matches_any_host("*!*@*.*"), matches_any_host("*!~bob@*.example.org")
(True, False)
>>> weak_ident_on_shared_host("*!~bob@*.example.org"), weak_ident_on_shared_host("*!bob@*.x")
(True, False)
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "Mask",
    "is_mask",
    "matches_any_host",
    "parse_mask",
    "weak_ident_on_shared_host",
]

_WELL_FORMED = re.compile(r"^(?:([^!@\s]+)!)?([^!@\s]+)@([^!@\s]+)$")
_WILDCARDS = set("*?")
_HOST_SEPARATORS = set(".:")
_SHARED_CLOAKS = ("gateway/",)


class Mask(NamedTuple):
    nick: str
    user: str
    host: str

    def __str__(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"


def is_mask(entry: str) -> bool:
    """A config entry is a mask (not an account name) when it has a ``!`` or an ``@``."""
    return "!" in entry or "@" in entry


def parse_mask(entry: str) -> Mask:
    """Split a mask entry into its parts; ValueError if it is not ``[nick!]user@host``."""
    m = _WELL_FORMED.match(entry)
    if m is None:
        raise ValueError(f"{entry!r} is not a nick!user@host mask")
    return Mask(m[1] or "*", m[2], m[3])


def matches_any_host(entry: str) -> bool:
    """True when the mask's host part fixes nothing but ``.`` and ``:`` (see the module)."""
    host = parse_mask(entry).host
    return set(host) <= _WILDCARDS | _HOST_SEPARATORS


def weak_ident_on_shared_host(entry: str) -> bool:
    """True when an unchecked or wildcard ident meets a host many may share (see the module)."""
    mask = parse_mask(entry)
    unfixed = mask.user.startswith("~") or bool(_WILDCARDS & set(mask.user))
    shared = bool(_WILDCARDS & set(mask.host)) or mask.host.lower().startswith(_SHARED_CLOAKS)
    return unfixed and shared

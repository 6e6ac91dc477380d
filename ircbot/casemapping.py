"""IRC case-insensitive names.

IRC servers compare nicknames and channel names case-insensitively, but *which* characters
count as the same is a server setting, announced in ``RPL_ISUPPORT`` (numeric 005) as
``CASEMAPPING``:

``ascii``
    Only ``A-Z`` fold to ``a-z``. ngircd and most modern IRCv3 servers use this.
``rfc1459``
    As ascii, plus ``[]\\~`` fold to ``{}|^``: the Scandinavian heritage of RFC 1459, where
    those pairs were upper and lower case of the same letters. The default when a server
    says nothing.
``strict-rfc1459``
    As rfc1459 but without ``~``/``^``.

Any other name (Ergo's ``rfc8265``, a PRECIS profile that also folds Unicode) is one the bot
does not implement. It then folds as ``ascii``, never rfc1459: folding *less* than the server
only fails to match a nick someone typed in another case, while folding *more* makes two
people the server keeps apart (``Alice[x]`` and ``Alice{x}``) one nick to the bot, and one
of them could be credited with the other's commands. Whoever sets the mapping from a
server's announcement says so in the log, once (see ``NetworkState.set_casemapping``).

Python's ``str.lower()`` is wrong for all three (it folds non-ASCII letters, and not ``[]\\``),
so two nicks that the server considers the same person could look different to the bot,
or the other way round, which is exactly how an impostor gets a vouch. Everything in the bot
that compares names goes through :class:`CaseMapping`.

>>> CaseMapping.from_name("rfc1459").fold("Nick[Away]")
'nick{away}'
>>> CaseMapping.from_name("ascii").fold("Nick[Away]")
'nick[away]'
>>> CaseMapping.from_name("ascii").equal("ÄBC", "äbc")
False
>>> CaseMapping.from_name("rfc8265").fold("Nick[Away]")
'nick[away]'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CaseMapping"]

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_TABLES = {
    "ascii": str.maketrans(_UPPER, _LOWER),
    "rfc1459": str.maketrans(_UPPER + "[]\\~", _LOWER + "{}|^"),
    "strict-rfc1459": str.maketrans(_UPPER + "[]\\", _LOWER + "{}|"),
}


@dataclass(frozen=True)
class CaseMapping:
    """One server's notion of case, applied with ``str.translate`` (fast, no regex)."""

    name: str

    @classmethod
    def from_name(cls, name: object) -> CaseMapping:
        """The mapping a server announced: none at all means rfc1459 (RFC 1459's rule), a
        name the bot does not know means ascii (see the module's docstring for why)."""
        if name is None or name == "":
            return cls("rfc1459")
        # str(): jaraco's ISUPPORT parser turns an all-digit value into an int
        lowered = str(name).lower()
        return cls(lowered if lowered in _TABLES else "ascii")

    @staticmethod
    def known(name: object) -> bool:
        """Whether ``name`` is a mapping the bot implements (else it folds as ascii)."""
        return str(name).lower() in _TABLES

    def fold(self, name: str) -> str:
        """The canonical form of ``name``: compare and store this, never the raw nick."""
        return name.translate(_TABLES[self.name])

    def equal(self, a: str, b: str) -> bool:
        return self.fold(a) == self.fold(b)

    def match(self, mask: str, value: str) -> bool:
        """Glob match (``*`` and ``?`` only) of ``value`` against ``mask``, both folded.

        ``[`` is an ordinary nick character on IRC, not a character class, so it is escaped.
        """
        pattern = re.escape(self.fold(mask)).replace(r"\*", ".*").replace(r"\?", ".")
        return re.fullmatch(pattern, self.fold(value), flags=re.DOTALL) is not None

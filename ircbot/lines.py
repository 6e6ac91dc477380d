"""Making text safe to send as IRC lines.

An IRC line is at most 512 bytes including the trailing CR LF, and the server relays our
PRIVMSG to others with our ``:nick!user@host`` prefix in front, so the room for text is
512 minus that prefix, the command, the target and the separators. Text that goes past it
is cut by the server, mid-character if it has to; text that contains CR or LF would end our
line early and let whoever wrote that text inject a command of their own (``\\r\\nQUIT``),
and NUL is forbidden outright. So every outgoing line is sanitised, and long text is split
on UTF-8 character boundaries, preferring spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jaraco.stream.buffer import LineBuffer

__all__ = ["MAX_LINE_BYTES", "ServerLineBuffer", "sanitize", "split_message", "text_budget"]

MAX_LINE_BYTES = 512
# Worst case of what the server prepends when relaying: nick (up to 30), user (~ + 10),
# host (63), the punctuation ":!@ ". Networks differ; this errs on the safe side.
_RELAY_PREFIX_BYTES = 1 + 30 + 1 + 11 + 1 + 63 + 1
_UNSAFE = re.compile(r"[\r\n\0]+")


def sanitize(text: str) -> str:
    """Replace CR, LF and NUL runs by one space: one line in, one line out."""
    return _UNSAFE.sub(" ", text)


def text_budget(command: str, target: str) -> int:
    """How many bytes of text fit in one ``COMMAND target :text`` line as relayed."""
    overhead = _RELAY_PREFIX_BYTES + len(command) + 1 + len(target.encode()) + 2 + 2
    return MAX_LINE_BYTES - overhead


def split_message(text: str, budget: int) -> list[str]:
    """Split sanitised ``text`` into pieces of at most ``budget`` UTF-8 bytes.

    Cuts at the last space that keeps a piece within budget, else at the last whole
    character, so no multi-byte character is ever cut in two. Empty text gives no pieces.
    """
    if budget < 4:
        raise ValueError("budget too small for one UTF-8 character")
    text = sanitize(text)
    data = text.encode("utf-8")
    pieces: list[str] = []
    while len(data) > budget:
        cut = data.rfind(b" ", 0, budget + 1)
        if cut <= 0:
            cut = budget
            while cut > 0 and (data[cut] & 0xC0) == 0x80:  # inside a multi-byte character
                cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:].lstrip(b" ")
    if data:
        pieces.append(data.decode("utf-8"))
    return pieces


class ServerLineBuffer(LineBuffer):
    r"""Lines from the server, decoded as UTF-8, surviving what other clients send.

    A line that is not UTF-8 at all (an old client in latin-1) decodes as latin-1, as
    jaraco's ``LenientDecodingLineBuffer`` does. But a server cuts a relayed line at 512
    bytes, mid-character if it must (ngircd then appends ``[CUT]``): a UTF-8 line with one
    cut character is decoded without that fragment, not turned into mojibake as a whole.
    The rest of the line must be UTF-8 with at least one non-ASCII character to count as
    UTF-8; otherwise latin-1 it is.

    >>> b = ServerLineBuffer()
    >>> b.feed("Olé ✓".encode()[:-1] + b"[CUT]\n" + b"Ol\xe9\n" + "Olé".encode() + b"\n")
    >>> list(b.lines())
    ['Olé [CUT]', 'Olé', 'Olé']
    """

    def lines(self) -> Iterator[str]:
        for line in super().lines():
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as err:
                yield _without_cut_character(line, err.start)


def _without_cut_character(line: bytes, start: int) -> str:
    end = start + 1
    while end < len(line) and 0x80 <= line[end] < 0xC0:  # the cut sequence's continuation
        end += 1
    try:
        text = line[:start].decode("utf-8") + line[end:].decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")
    return text if not text.isascii() else line.decode("latin-1")

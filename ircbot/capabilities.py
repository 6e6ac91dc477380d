"""IRCv3 capability negotiation and SASL PLAIN, as a state machine with no I/O of its own.

The bot sends ``CAP LS 302`` before ``NICK``/``USER`` (a server that sees CAP first holds
registration until ``CAP END``), requests the capabilities it wants from those offered, logs
in with SASL PLAIN if it has credentials, and ends negotiation. jaraco ``irc`` has a SASL
implementation of its own, but it stalls on a trailing space after the ACKed capabilities,
reads any NAK as a SASL refusal, never times out and never splits the payload into the
400-byte chunks the spec requires; this one handles each of those, and is fed events so it
can be tested against replayed server lines.

References: https://ircv3.net/specs/extensions/capability-negotiation and
https://ircv3.net/specs/extensions/sasl-3.1
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ircbot.errors import SaslFailed

__all__ = ["CapNegotiator", "SaslFailed", "sasl_plain_chunks"]

logger = logging.getLogger(__name__)
_CHUNK = 400


def sasl_plain_chunks(username: str, password: str) -> list[str]:
    """The ``AUTHENTICATE`` arguments carrying a PLAIN payload, split as the spec requires.

    A payload of an exact multiple of 400 bytes is followed by ``+`` so the server knows it
    has ended.

    >>> sasl_plain_chunks("bot", "secret")
    ['Ym90AGJvdABzZWNyZXQ=']
    >>> [len(c) for c in sasl_plain_chunks("a" * 100, "b" * 98)]
    [400, 1]
    """
    payload = base64.b64encode(f"{username}\0{username}\0{password}".encode()).decode()
    chunks = [payload[i : i + _CHUNK] for i in range(0, len(payload), _CHUNK)]
    if len(chunks[-1]) == _CHUNK:
        chunks.append("+")
    return chunks


def _parse_caps(text: str) -> dict[str, str | None]:
    """``"sasl=PLAIN multi-prefix"`` -> ``{"sasl": "PLAIN", "multi-prefix": None}``."""
    caps: dict[str, str | None] = {}
    for token in text.split():
        name, eq, value = token.partition("=")
        caps[name] = value if eq else None
    return caps


@dataclass
class CapNegotiator:
    """Drives CAP/SASL for one connection. ``send`` writes one raw line, bypassing the queue;
    ``send_secret``, if given, writes the lines carrying the SASL payload and must not log them
    (base64 is no protection: the payload is the password)."""

    wanted: Sequence[str]
    send: Callable[[str], None]
    sasl_username: str = ""
    sasl_password: str | None = field(default=None, repr=False)
    sasl_required: bool = True
    send_secret: Callable[[str], None] | None = None
    offered: dict[str, str | None] = field(default_factory=dict)
    enabled: set[str] = field(default_factory=set)
    account: str | None = None
    state: str = "ls"  # ls -> req -> sasl -> done
    sasl_failure: str | None = None
    _ls_buffer: dict[str, str | None] = field(default_factory=dict)
    _outstanding: int = 0

    @property
    def done(self) -> bool:
        return self.state == "done"

    @property
    def wants_sasl(self) -> bool:
        return bool(self.sasl_username and self.sasl_password is not None)

    # -- events ---------------------------------------------------------------------------
    def on_cap(self, args: Sequence[str]) -> None:
        """A ``CAP <target> <sub> ...`` line; ``args`` are the words after the target."""
        if not args:
            return
        sub = args[0].upper()
        rest = list(args[1:])
        if sub == "LS":
            self._on_ls(rest)
        elif sub == "ACK":
            self._on_ack(rest[-1] if rest else "")
        elif sub == "NAK":
            self._on_nak(rest[-1] if rest else "")
        elif sub == "NEW":
            self._on_new(rest[-1] if rest else "")
        elif sub == "DEL":
            for name in _parse_caps(rest[-1] if rest else ""):
                self.offered.pop(name, None)
                self.enabled.discard(name)

    def _on_ls(self, rest: list[str]) -> None:
        more = len(rest) >= 2 and rest[0] == "*"
        self._ls_buffer.update(_parse_caps(rest[-1] if rest else ""))
        if more or self.state != "ls":
            return
        self.offered, self._ls_buffer = self._ls_buffer, {}
        self._request(self._choose(self.offered))

    def _choose(self, offered: Iterable[str]) -> list[str]:
        names = [c for c in self.wanted if c in offered and c not in self.enabled]
        if "sasl" in names and not self.wants_sasl:
            names.remove("sasl")
        return names

    def _request(self, names: list[str]) -> None:
        if not names:
            self._after_requests()
            return
        self.state = "req"
        self._outstanding += 1
        self.send("CAP REQ :" + " ".join(names))

    def _on_ack(self, text: str) -> None:
        for name in text.split():  # split() also drops the trailing space some servers send
            if name.startswith("-"):
                self.enabled.discard(name[1:])
            else:
                self.enabled.add(name)
        self._answered()

    def _on_nak(self, text: str) -> None:
        names = text.split()
        logger.info("server refused capabilities: %s", " ".join(names))
        self._outstanding = max(0, self._outstanding - 1)
        if len(names) > 1 and self.state == "req":
            # A NAK refuses the whole request; ask one by one so one bad cap costs only itself.
            for name in names:
                self._outstanding += 1
                self.send(f"CAP REQ :{name}")
            return
        if self._outstanding == 0 and self.state == "req":
            self._after_requests()

    def _on_new(self, text: str) -> None:
        new = _parse_caps(text)
        self.offered.update(new)
        if self.state == "done":
            names = [c for c in self._choose(new) if c != "sasl"]
            if names:
                self.send("CAP REQ :" + " ".join(names))

    def _answered(self) -> None:
        self._outstanding = max(0, self._outstanding - 1)
        if self._outstanding == 0 and self.state == "req":
            self._after_requests()

    def _after_requests(self) -> None:
        if self.wants_sasl and "sasl" in self.enabled:
            mechanisms = (self.offered.get("sasl") or "PLAIN").upper().split(",")
            if "PLAIN" not in mechanisms:
                self._sasl_failed(f"server offers SASL {','.join(mechanisms)}, not PLAIN")
                return
            self.state = "sasl"
            self.send("AUTHENTICATE PLAIN")
            return
        if self.wants_sasl:
            self._sasl_failed("server does not offer SASL")
            return
        self._end()

    def on_authenticate(self, argument: str) -> None:
        """``AUTHENTICATE +`` (or ``:+``, as InspIRCd sends it): the server wants the payload."""
        if self.state != "sasl" or argument.strip() != "+":
            return
        assert self.sasl_password is not None
        send = self.send_secret or self.send
        for chunk in sasl_plain_chunks(self.sasl_username, self.sasl_password):
            send(f"AUTHENTICATE {chunk}")

    def on_numeric(self, code: str, args: Sequence[str]) -> None:
        """SASL numerics 900-908 (902 nick locked, 904 bad credentials, ...)."""
        if code == "900":  # RPL_LOGGEDIN <nick> <nick!ident@host> <account> :...
            self.account = args[1] if len(args) > 1 else None
        elif code == "903" and self.state == "sasl":
            logger.info("SASL login succeeded as %s", self.account or self.sasl_username)
            self._end()
        elif code in ("902", "904", "905", "906") and self.state == "sasl":
            reason = args[-1] if args else code
            self._sasl_failed(f"{code} {reason}")
        elif code == "907" and self.state == "sasl":  # already logged in: fine
            self._end()

    def on_registered(self) -> None:
        """001 arrived: a server without CAP support registered us; nothing more to negotiate."""
        if self.state in ("ls", "req"):
            self.state = "done"

    def on_timeout(self) -> None:
        """Negotiation took too long: end it, failing SASL if that was where it stalled."""
        if self.state == "sasl":
            self.send("AUTHENTICATE *")
            self._sasl_failed("timed out")
        elif self.state in ("ls", "req"):
            logger.warning("capability negotiation timed out; continuing without it")
            if self.wants_sasl:
                self._sasl_failed("timed out before SASL could start")
            else:
                self._end()

    # -- outcomes --------------------------------------------------------------------------
    def _sasl_failed(self, reason: str) -> None:
        self.sasl_failure = reason
        if self.sasl_required:
            logger.error("SASL login as %s failed: %s; aborting", self.sasl_username, reason)
            self.state = "failed"
            raise SaslFailed(reason)
        logger.warning(
            "SASL login as %s failed: %s; continuing without an account", self.sasl_username, reason
        )
        self._end()

    def _end(self) -> None:
        self.state = "done"
        self.send("CAP END")

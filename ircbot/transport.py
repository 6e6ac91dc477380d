"""The connection to the IRC server, built on jaraco ``irc``'s reactor.

What this adds to the library, and why:

* the socket: ``TCP_NODELAY`` (small interactive lines + Nagle + delayed ACK = 40 ms stalls),
  TLS with certificate verification and SNI on the *host name*, and ``CAP LS 302`` written
  before ``NICK``/``USER`` so the server holds registration for capability negotiation;
* lenient decoding (one invalid UTF-8 byte from any user must not kill the reactor) and a
  guard around each line, so a bad line or a failing handler costs that line only;
* a ``QUIT`` without a reason, which the library's line handling fails on, read as a quit;
* CAP/SASL through :class:`~ircbot.capabilities.CapNegotiator` instead of the library's;
* ISUPPORT tokens without a value (``WHOX``, ``NAMESX``...), which the library's
  ``FeatureSet`` silently drops, kept in ``connection.features`` as ``True``;
* nick collisions (``alt_nicks``, then numbered) and taking the configured nick back;
* CTCP VERSION and PING answered, a few at a time, so a CTCP flood costs the bot nothing;
* a ping timeout, and reconnection with exponential backoff and full jitter, reset after a
  successful registration (the library's ``ExponentialBackoff`` starts at 60 s, never resets
  and is a shared mutable default);
* every outgoing line through the :class:`~ircbot.outqueue.OutputQueue`, sanitised and split
  to fit 512 bytes: raw lines (JOIN, WHO, WHOIS, NICK) in its protocol lane, durable
  deliveries in its priority lane, chat answers in turns per requester; only PONG, CAP,
  AUTHENTICATE and QUIT skip the queue.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any

import irc.client

from ircbot.capabilities import CapNegotiator, SaslFailed
from ircbot.casemapping import CaseMapping
from ircbot.config import IrcConfig
from ircbot.errors import FatalError
from ircbot.lines import ServerLineBuffer, sanitize, split_message, text_budget
from ircbot.outqueue import Lane, OnSent, OutputQueue, Requester
from ircbot.ratelimit import TokenBucket

__all__ = ["Backoff", "FatalError", "Transport"]

logger = logging.getLogger(__name__)
VERSION = "livechat-bot 0.1"
# CTCP VERSION/PING answers are a courtesy: one bucket for all of them keeps a CTCP flood,
# from one person or many, from filling the output queue ahead of command replies.
_CTCP_BURST = 3
_CTCP_RATE = 0.2


class Backoff:
    """Exponential backoff with full jitter: min, 2*min, 4*min ... up to max, randomised."""

    def __init__(self, minimum: float, maximum: float, rng: Callable[[], float] = random.random):
        self.minimum, self.maximum, self.rng = minimum, max(minimum, maximum), rng
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * 2**self.attempt)
        self.attempt += 1
        return float(ceiling / 2 + self.rng() * ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


class SafeServerConnection(irc.client.ServerConnection):
    """A ServerConnection that survives bad bytes, bad lines and failing handlers."""

    buffer_class = ServerLineBuffer
    last_received = 0.0
    clock: Callable[[], float] = staticmethod(lambda: 0.0)

    def process_data(self) -> None:
        self.last_received = self.clock()
        super().process_data()
        # TLS may hold decrypted records that select() cannot see: read them now.
        sock = self.socket
        while isinstance(sock, ssl.SSLSocket) and self.socket is sock and sock.pending():
            super().process_data()

    def _process_line(self, line: str) -> None:
        try:
            super()._process_line(line)
        except (SaslFailed, FatalError):
            raise
        except Exception:
            logger.exception("error while handling line %r", line[:300])

    def _handle_other(
        self,
        arguments: list[str],
        command: str,
        source: irc.client.NickMask | None,
        tags: list[Any],
    ) -> None:
        """A QUIT with no parameter (``:nick!user@host QUIT``) is legal and some servers send
        it, but the library takes its first argument unchecked, raises, and the quit is lost:
        the nick would stay tracked as present. Give it an empty reason instead."""
        if command == "quit" and not arguments:
            arguments = [""]
        super()._handle_other(arguments, command, source, tags)


class Transport:
    """One server connection: connect, negotiate, register, keep alive, reconnect, send."""

    def __init__(
        self,
        cfg: IrcConfig,
        *,
        sasl_password: str | None,
        clock: Callable[[], float],
        rng: Callable[[], float] = random.random,
        reply_backlog: int = 10,
        fold: Callable[[str], str] | None = None,
        caps: set[str] | None = None,
    ) -> None:
        """``fold`` compares nicks as the server does (the network state's, which follows its
        CASEMAPPING); ``caps`` is the set the negotiation fills with the capabilities enabled
        on the current connection (the network state's, which the identity policy reads)."""
        self.cfg = cfg
        self.sasl_password = sasl_password
        self.clock = clock
        self.reactor = irc.client.Reactor()
        self.reactor.connection_class = SafeServerConnection
        self.connection: SafeServerConnection = self.reactor.server()
        self.connection.clock = clock
        self.queue = OutputQueue(
            TokenBucket(cfg.flood_burst, cfg.flood_rate, clock), self._write, backlog=reply_backlog
        )
        self._ctcp_bucket = TokenBucket(_CTCP_BURST, _CTCP_RATE, clock)
        self.backoff = Backoff(cfg.reconnect_min, cfg.reconnect_max, rng)
        self.nicks = [cfg.nick, *cfg.alt_nicks]
        self.fold = fold or CaseMapping.from_name(None).fold
        self.caps: set[str] = set() if caps is None else caps
        self.negotiator: CapNegotiator | None = None
        self.registered = False
        self.stopping = False
        self._nick_attempt = 0
        self._reconnect_at: float | None = None
        self._cap_deadline: float | None = None
        self._ping_sent_at: float | None = None
        self._next_regain = 0.0
        for event, handler in {
            "cap": self._on_cap,
            "authenticate": self._on_authenticate,
            "welcome": self._on_welcome,
            "featurelist": self._on_isupport,
            "nicknameinuse": self._on_nick_refused,
            "erroneusnickname": self._on_nick_refused,
            "unavailresource": self._on_nick_refused,
            "nick": self._on_nick_or_quit,
            "quit": self._on_nick_or_quit,
            "disconnect": self._on_disconnect,
            "ctcp": self._on_ctcp,
        }.items():
            self.reactor.add_global_handler(event, handler, -10)
        for numeric in ("900", "902", "903", "904", "905", "906", "907", "908"):
            self.reactor.add_global_handler(irc.events.numeric[numeric], self._on_sasl_numeric, -10)

    # -- connecting -----------------------------------------------------------------------
    def _open_socket(self, address: tuple[str, int]) -> socket.socket:
        sock = socket.create_connection(address, timeout=self.cfg.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.cfg.tls:
            context = ssl.create_default_context()
            if not self.cfg.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=self.cfg.host)
        sock.settimeout(None)
        sock.sendall(b"CAP LS 302\r\n")
        return sock

    def connect(self) -> None:
        """Open the connection; on failure, schedule the next attempt."""
        self._reconnect_at = None
        self.registered = False
        self._nick_attempt = 0
        self._ping_sent_at = None
        self.caps.clear()  # each connection negotiates afresh
        self.negotiator = CapNegotiator(
            wanted=self.cfg.caps,
            send=self.send_now,
            sasl_username=self.cfg.sasl_username,
            sasl_password=self.sasl_password,
            sasl_required=self.cfg.sasl_required,
            send_secret=self._send_secret,
            enabled=self.caps,
        )
        logger.info("connecting to %s:%s%s", self.cfg.host, self.cfg.port, " (TLS)" * self.cfg.tls)
        try:
            self.connection.connect(
                self.cfg.host,
                self.cfg.port,
                self.nicks[0],
                username=self.cfg.username,
                ircname=self.cfg.realname,
                connect_factory=self._open_socket,
            )
        except (irc.client.ServerConnectionError, OSError, ssl.SSLError) as exc:
            logger.warning("cannot connect to %s:%s: %s", self.cfg.host, self.cfg.port, exc)
            self._schedule_reconnect()
            return
        self.connection.last_received = self.clock()
        self._cap_deadline = self.clock() + self.cfg.sasl_timeout

    def _schedule_reconnect(self) -> None:
        if self.stopping:
            return
        delay = self.backoff.next_delay()
        self._reconnect_at = self.clock() + delay
        logger.info("reconnecting in %.1fs", delay)

    def _on_disconnect(
        self, connection: irc.client.ServerConnection, event: irc.client.Event
    ) -> None:
        was_registered, self.registered = self.registered, False
        dropped = self.queue.clear()
        logger.warning(
            "disconnected: %s%s",
            (event.arguments or ["?"])[0],
            f" ({dropped} queued lines dropped)" if dropped else "",
        )
        if was_registered:
            self.backoff.reset()
        self._schedule_reconnect()

    # -- negotiation and registration -------------------------------------------------------
    def _on_cap(self, connection: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if self.negotiator:
            try:
                self.negotiator.on_cap(event.arguments)
            except SaslFailed as exc:
                raise FatalError(f"SASL login failed: {exc}") from exc

    def _on_authenticate(self, connection: Any, event: Any) -> None:
        if self.negotiator:
            self.negotiator.on_authenticate(event.target or "")

    def _on_sasl_numeric(self, connection: Any, event: Any) -> None:
        code = next(k for k, v in irc.events.numeric.items() if v == event.type)
        if self.negotiator:
            try:
                self.negotiator.on_numeric(code, event.arguments)
            except SaslFailed as exc:
                raise FatalError(f"SASL login failed: {exc}") from exc

    def _on_welcome(self, connection: Any, event: Any) -> None:
        self.registered = True
        self._cap_deadline = None
        if self.negotiator:
            self.negotiator.on_registered()
        logger.info(
            "registered as %s; capabilities: %s",
            connection.get_nickname(),
            " ".join(sorted(self.caps)) or "none",
        )

    def _on_isupport(self, connection: Any, event: Any) -> None:
        """005: keep the bare tokens (``WHOX``) the library's ``FeatureSet.load`` ignores.

        Without this ``features.whox`` never exists and the bot's WHO never asks for accounts.
        """
        for token in event.arguments[:-1]:  # the last argument is "are supported by..."
            if token and "=" not in token and not token.startswith("-"):
                connection.features.set(token)

    def has_whox(self) -> bool:
        """The server said WHOX in its 005: a WHO can ask for accounts."""
        return getattr(self.connection.features, "whox", None) is not None

    def _on_nick_refused(self, connection: Any, event: Any) -> None:
        if self.registered:
            return  # a regain attempt failed; try again later
        self._nick_attempt += 1
        if self._nick_attempt < len(self.nicks):
            nick = self.nicks[self._nick_attempt]
        else:
            nick = f"{self.nicks[0][:12]}{self._nick_attempt}"
        logger.info("nick %s refused; trying %s", (event.arguments or ["?"])[0], nick)
        self.send_now(f"NICK {nick}")

    def _wants_nick_back(self) -> bool:
        return self.registered and not self._equal(self.connection.get_nickname(), self.nicks[0])

    def _equal(self, a: str, b: str) -> bool:
        return bool(a and b) and self.fold(a) == self.fold(b)

    def _on_nick_or_quit(self, connection: Any, event: Any) -> None:
        """The wanted nick may have just been freed: take it back at once."""
        if self._wants_nick_back() and self._equal(event.source.nick, self.nicks[0]):
            self.send(f"NICK {self.nicks[0]}")

    def _on_ctcp(self, connection: Any, event: Any) -> None:
        kind = (event.arguments or [""])[0].upper()
        nick = event.source.nick
        if kind not in ("VERSION", "PING") or not self._ctcp_bucket.take():
            return
        # A courtesy answer takes its turn with the chat replies, never before the protocol.
        requester = Requester(self.fold(nick))
        if kind == "VERSION":
            self.queue.put_reply(requester, sanitize(f"NOTICE {nick} :\x01VERSION {VERSION}\x01"))
        elif kind == "PING":
            token = sanitize(event.arguments[1] if len(event.arguments) > 1 else "")[:64]
            line = f"NOTICE {nick} :\x01PING {token}\x01".replace(" \x01", "\x01")
            self.queue.put_reply(requester, sanitize(line))

    # -- the clock ----------------------------------------------------------------------
    def tick(self) -> None:
        """Timers: reconnect, negotiation deadline, keepalive, nick regain, queued output."""
        now = self.clock()
        if self._reconnect_at is not None:
            if now >= self._reconnect_at:
                self.connect()
            return
        if not self.connection.is_connected():
            return
        if self._cap_deadline is not None and now >= self._cap_deadline and self.negotiator:
            self._cap_deadline = None
            try:
                self.negotiator.on_timeout()
            except SaslFailed as exc:
                raise FatalError(f"SASL login failed: {exc}") from exc
        idle = now - self.connection.last_received
        if idle >= self.cfg.ping_timeout:
            logger.warning("no data from the server for %.0fs", idle)
            self.connection.disconnect("Ping timeout")
            return
        if idle >= self.cfg.ping_timeout / 2 and (
            self._ping_sent_at is None or self._ping_sent_at < self.connection.last_received
        ):
            self._ping_sent_at = now
            self.send_now("PING :keepalive")
        if self._wants_nick_back() and now >= self._next_regain:
            self._next_regain = now + 30
            self.send(f"NICK {self.nicks[0]}")
        self.queue.drain()

    def next_deadline(self) -> float:
        """Seconds until :meth:`tick` has something to do (bounded, for select)."""
        now = self.clock()
        waits = [1.0]
        due = self.queue.next_due()
        if due is not None:
            waits.append(due)
        if self._reconnect_at is not None:
            waits.append(self._reconnect_at - now)
        if self._cap_deadline is not None:
            waits.append(self._cap_deadline - now)
        return max(0.0, min(waits))

    # -- sending --------------------------------------------------------------------------
    def _write(self, line: str) -> bool:
        if not self.connection.is_connected():
            return False
        try:
            self.connection.send_raw(line)
        except (irc.client.MessageTooLong, irc.client.InvalidCharacters) as exc:
            logger.error("refused to send a malformed line (%s): %r", exc, line[:100])
            return False
        except irc.client.ServerNotConnectedError:
            return False
        return bool(self.connection.is_connected())

    def send_now(self, line: str) -> None:
        """Bypass the queue: for negotiation and keepalive only."""
        self._write(sanitize(line))

    def _send_secret(self, line: str) -> None:
        """Write a line carrying the SASL payload straight to the socket: the library's
        ``send_raw`` logs every line it sends at DEBUG, and this one is the password."""
        sock = self.connection.socket
        if sock is None:
            return
        try:
            sock.sendall(f"{sanitize(line)}\r\n".encode())
        except OSError:
            self.connection.disconnect("Connection reset by peer")

    def send(self, line: str, on_sent: OnSent | None = None) -> None:
        """Queue one raw protocol line (sanitised): it waits behind no chat reply.

        ``on_sent`` runs once the line is on the socket (a WHOIS's timeout starts there).
        """
        self.queue.put(sanitize(line), on_sent)

    def say(
        self,
        command: str,
        target: str,
        text: str,
        on_sent: OnSent | None = None,
        *,
        requester: Requester | None = None,
        lane: Lane = Lane.REPLY,
    ) -> None:
        """PRIVMSG or NOTICE ``text``, split to fit; ``on_sent`` runs after the last piece.

        A reply counts, every piece of it, against ``requester``'s share (by default the
        target's own: a channel for an announcement). ``lane=Lane.PRIORITY`` is for durable
        deliveries, which wait for no reply and are never cut.
        """
        target = sanitize(target).replace(" ", "")
        pieces = split_message(text, text_budget(command, target)) or [" "]
        if lane is Lane.REPLY and requester is None:
            requester = Requester(self.fold(target))
        for i, piece in enumerate(pieces):
            done = on_sent if i == len(pieces) - 1 else None
            line = f"{command} {target} :{piece}"
            if requester is not None and lane is Lane.REPLY:
                self.queue.put_reply(requester, line, done)
            else:
                self.queue.put(line, done, lane)

    def quit(self, message: str = "bye", wait: float = 2.0) -> None:
        """Say QUIT and close, giving the server a moment so the QUIT is not lost in a reset."""
        self.stopping = True
        self._reconnect_at = None
        sock = self.connection.socket
        if not self.connection.is_connected() or sock is None:
            return
        self.send_now(f"QUIT :{message}")
        try:
            sock.shutdown(socket.SHUT_WR)
            end = self.clock() + wait
            while self.clock() < end:
                ready, _, _ = select.select([sock], [], [], max(0.0, end - self.clock()))
                if not ready or not sock.recv(4096):
                    break
        except OSError:
            pass
        self.connection.disconnect(message)

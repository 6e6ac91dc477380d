"""A plain-socket IRC client that lets a test read like a conversation.

Why not jaraco `irc`? The bot under test is built on it, so a test client built on the same
library would share its bugs (strict UTF-8 decoding, its CAP handling) and hide them. This client
is a socket, a reader thread and a list of received messages; nothing else.

The model: every line the server sends is parsed into a `Message` and appended to a list.
`expect()` returns the first matching message that no earlier `expect()` returned (a consumed
set, so an unrelated message that arrived first stays available for a later `expect`), and fails
with the last lines received when nothing matches in time. `expect_none()` watches only what
arrives after it is called; `expect_none_before()` ends a negative check on a marker message
(the bot's answer to a later `!ping`) rather than on a window of time. PING is answered by the
reader thread at all times, so a test that is busy elsewhere never gets its client timed out.

Nicks and channels are compared with ASCII case folding: ngircd announces CASEMAPPING=ascii.

The same client drives the services network (tests/support/services.py, InspIRCd + Atheme):
IRCv3 tags, CAP/SASL, NickServ REGISTER/IDENTIFY/LOGOUT, and registration in two steps
(`begin`, then `welcome`) so that many clients can finish registering in one InspIRCd tick.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["IRCTestClient", "Message", "nothing_before_pong", "parse_message", "renamed"]

#: How many received lines an AssertionError shows.
RECENT_LINES = 20

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}

# Replies that end a registration attempt: a test should see why at once, not a timeout.
_REGISTRATION_ERRORS = frozenset({"432", "433", "436", "437", "464", "465", "ERROR"})
_JOIN_ERRORS = frozenset({"403", "405", "437", "471", "473", "474", "475", "476", "477"})
_NICK_ERRORS = frozenset({"431", "432", "433", "436", "437", "438", "484"})
_SASL_ERRORS = frozenset({"902", "904", "905", "906", "907", "908"})

Pattern = str | re.Pattern[str] | None
Commands = str | Iterable[str] | None
Where = Callable[["Message"], bool] | None

# Atheme's NickServ NOTICEs that refuse an IDENTIFY.
_IDENTIFY_REFUSALS = ("invalid", "not registered", "not a registered", "failed", "frozen")


def fold(name: str) -> str:
    """Lower-case ASCII letters only: the CASEMAPPING=ascii rule ngircd announces."""
    return name.translate(_ASCII_LOWER)


def decode_line(raw: bytes) -> str:
    """Decode UTF-8, falling back to latin-1, because a test must see what a user sent.

    A strict decoder would raise on one invalid byte, which is exactly the input some tests
    send on purpose.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unescape_tag_value(value: str) -> str:
    """Undo IRCv3 tag value escaping (`\\:` `\\s` `\\\\` `\\r` `\\n`; unknown `\\x` is x)."""
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        nxt = next(chars, None)
        if nxt is None:  # a lone trailing backslash is dropped
            break
        out.append(_TAG_ESCAPES.get(nxt, nxt))
    return "".join(out)


@dataclass(frozen=True)
class Message:
    """One parsed line from the server.

    `trailing` is the last parameter (with or without its leading colon on the wire), which is
    the human text of PRIVMSG/NOTICE and of most numerics; `expect()` matches its pattern there.
    `nick` holds the whole prefix when the prefix is a server name.
    """

    tags: dict[str, str]
    prefix: str | None
    nick: str | None
    user: str | None
    host: str | None
    command: str
    params: list[str]
    trailing: str
    raw: str = field(default="", compare=False)

    @property
    def target(self) -> str | None:
        """The first parameter: the channel or nick a PRIVMSG/NOTICE was sent to."""
        return self.params[0] if self.params else None

    @property
    def text(self) -> str:
        """Alias of `trailing`, for readability in PRIVMSG tests."""
        return self.trailing


def parse_message(line: str) -> Message:
    """Parse one IRC line (without CRLF), IRCv3 message tags included."""
    rest = line
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        tag_part, _, rest = rest[1:].partition(" ")
        for item in tag_part.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape_tag_value(value)
    rest = rest.lstrip(" ")
    prefix = nick = user = host = None
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        nick_user, _, host_part = prefix.partition("@")
        nick, _, user_part = nick_user.partition("!")
        user = user_part or None
        host = host_part or None
    rest = rest.lstrip(" ")
    command, _, rest = rest.partition(" ")
    params: list[str] = []
    while True:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    return Message(
        tags=tags,
        prefix=prefix,
        nick=nick,
        user=user,
        host=host,
        command=command.upper(),
        params=params,
        trailing=params[-1] if params else "",
        raw=line,
    )


def _command_set(command: Commands) -> frozenset[str] | None:
    if command is None:
        return None
    if isinstance(command, str):
        return frozenset({command.upper()})
    return frozenset(c.upper() for c in command)


def _compile(pattern: Pattern) -> re.Pattern[str] | None:
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    return re.compile(pattern)


def _describe(
    pattern: Pattern, command: Commands, source: str | None, target: str | None, where: Where
) -> str:
    commands = _command_set(command)
    what = "any message" if commands is None else "/".join(sorted(commands))
    regex = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    if regex is not None:
        what += f" matching {regex!r}"
    if source is not None:
        what += f" from {source!r}"
    if target is not None:
        what += f" to {target!r}"
    if where is not None:
        name = getattr(where, "__name__", "<lambda>")
        what += " where a predicate holds" if name == "<lambda>" else f" where {name}"
    return what


class IRCTestClient:
    """A registered IRC connection driven by a test; build it with `IRCTestClient.connect()`.

    All waits take a timeout in seconds and end as soon as the awaited line arrives.
    """

    def __init__(self, sock: socket.socket, nick: str, *, host: str = "", port: int = 0) -> None:
        """Wrap an already connected socket and start the reader thread (prefer `connect`)."""
        self.host = host
        self.port = port
        #: Our nick as the server knows it; follows NICK changes the server confirms.
        self.current_nick = nick
        #: Capabilities the server offered in CAP LS (name -> value, "" when none).
        self.server_caps: dict[str, str] = {}
        #: Capabilities the server acknowledged.
        self.caps: set[str] = set()
        #: ISUPPORT tokens from 005 (name -> value, "" when none), e.g. CASEMAPPING.
        self.isupport: dict[str, str] = {}
        #: The account SASL logged us in as (numeric 900), if any.
        self.account: str | None = None
        self._sock = sock
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._messages: list[Message] = []
        self._consumed: set[int] = set()
        self._first_unconsumed = 0
        self._closed = threading.Event()
        # Set by 001, a registration error or the close: see `registration_ended`.
        self._registration_over = threading.Event()
        self._close_reason = ""
        self._closing = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"irc-test-client-{nick}", daemon=True
        )
        self._reader.start()

    # ----------------------------------------------------------------- connection set-up

    @classmethod
    def open(cls, host: str, port: int, nick: str, timeout: float = 5) -> IRCTestClient:
        """Connect without registering: nothing is sent yet (see `begin` and `cap_ls`).

        `nick` is the nick `begin` will ask for.
        """
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, nick, host=host, port=port)

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        nick: str,
        user: str | None = None,
        realname: str | None = None,
        timeout: float = 5,
        *,
        caps: Sequence[str] | None = None,
        sasl: tuple[str, str] | None = None,
        password: str | None = None,
    ) -> IRCTestClient:
        """Connect and register, returning once the server sent 001.

        `caps` (even an empty list) makes the client negotiate IRCv3 first: `CAP LS 302`, a
        `CAP REQ` for the listed capabilities (plus `sasl` when `sasl=(account, password)` is
        given), SASL PLAIN, then `CAP END`. A capability the server does not offer, a NAK, a SASL
        failure or a nick already in use fail with AssertionError at once, because a test that
        asked for them cannot mean anything without them. `password` is sent as PASS.
        """
        deadline = time.monotonic() + timeout
        client = cls.open(host, port, nick, timeout)
        try:
            client.begin(user, realname, caps=caps, sasl=sasl, password=password, timeout=timeout)
            client.welcome(client._remaining(deadline))
        except BaseException:
            client.close()
            raise
        return client

    def _remaining(self, deadline: float) -> float:
        return max(0.0, deadline - time.monotonic())

    def begin(
        self,
        user: str | None = None,
        realname: str | None = None,
        *,
        caps: Sequence[str] | None = None,
        sasl: tuple[str, str] | None = None,
        password: str | None = None,
        timeout: float = 5,
    ) -> None:
        """Send the registration (and negotiate CAP and SASL, as `connect` says); no wait for 001.

        Split from `welcome` so that many clients can be started first and then all finish
        registering in the same server tick (InspIRCd registers clients once a second).
        """
        deadline = time.monotonic() + timeout
        user = user or self.current_nick
        realname = realname or self.current_nick
        negotiate = caps is not None or sasl is not None
        if password is not None:
            self.send_raw(f"PASS {password}")
        if negotiate:
            self.send_raw("CAP LS 302")
        self.send_raw(f"NICK {self.current_nick}")
        self.send_raw(f"USER {user} 0 * :{realname}")
        if negotiate:
            wanted = list(caps or ())
            if sasl is not None and "sasl" not in wanted:
                wanted.append("sasl")
            self._cap_ls(deadline)
            if wanted:
                self._cap_req(wanted, deadline)
            if sasl is not None:
                self._sasl_plain(*sasl, deadline=deadline)
            self.send_raw("CAP END")

    def welcome(self, timeout: float = 5) -> Message:
        """Wait for 001 and return it; a registration error fails at once."""
        welcome = self._wait_for(
            lambda m: m.command == "001",
            timeout,
            "001 (registration)",
            fail=lambda m: m.command in _REGISTRATION_ERRORS,
        )
        if welcome.params:
            self.current_nick = welcome.params[0]
        return welcome

    def registration_ended(self, timeout: float = 0) -> bool:
        """Wait up to `timeout` s for 001, a registration error or the close; tell if one came.

        For a caller that must act while it waits (services.wait_registered wakes InspIRCd at
        each second boundary); `welcome()` then returns the 001 or fails with the error.
        """
        return self._registration_over.wait(timeout)

    def cap_ls(self, timeout: float = 5) -> dict[str, str]:
        """Send `CAP LS 302` and return what the server offers (name -> value, "" when none)."""
        self.send_raw("CAP LS 302")
        self._cap_ls(time.monotonic() + timeout)
        return dict(self.server_caps)

    def _cap_ls(self, deadline: float) -> None:
        while True:
            msg = self._wait_for(
                lambda m: m.command == "CAP" and len(m.params) >= 3 and m.params[1] == "LS",
                self._remaining(deadline),
                "CAP LS reply",
                fail=lambda m: m.command in _REGISTRATION_ERRORS,
            )
            for token in msg.trailing.split():
                name, _, value = token.partition("=")
                self.server_caps[name] = value
            # CAP LS 302 continuation lines look like `CAP * LS * :caps...`.
            if not (len(msg.params) >= 4 and msg.params[2] == "*"):
                return

    def _cap_req(self, wanted: list[str], deadline: float) -> None:
        missing = [cap for cap in wanted if cap not in self.server_caps]
        if missing:
            raise AssertionError(
                f"{self.current_nick}: server does not offer {missing}; "
                f"CAP LS offered {sorted(self.server_caps)}"
            )
        self.send_raw(f"CAP REQ :{' '.join(wanted)}")
        pending = set(wanted)
        while pending:
            msg = self._wait_for(
                lambda m: (
                    m.command == "CAP" and len(m.params) >= 3 and m.params[1] in {"ACK", "NAK"}
                ),
                self._remaining(deadline),
                f"CAP ACK/NAK for {wanted}",
            )
            if msg.params[1] == "NAK":
                raise AssertionError(f"{self.current_nick}: server refused CAP REQ: {msg.raw}")
            for cap in msg.trailing.split():
                name = cap.lstrip("-~=")
                if cap.startswith("-"):
                    self.caps.discard(name)
                else:
                    self.caps.add(name)
                pending.discard(name)

    def _sasl_plain(self, account: str, password: str, *, deadline: float) -> None:
        def sasl_error(m: Message) -> bool:
            return m.command in _SASL_ERRORS

        self.send_raw("AUTHENTICATE PLAIN")
        # InspIRCd sends `AUTHENTICATE :+`; the parser turns both spellings into params ["+"].
        self._wait_for(
            lambda m: m.command == "AUTHENTICATE" and m.params[:1] == ["+"],
            self._remaining(deadline),
            "AUTHENTICATE +",
            fail=sasl_error,
        )
        payload = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode("ascii")
        chunks = [payload[i : i + 400] for i in range(0, len(payload), 400)]
        if not chunks or len(chunks[-1]) == 400:
            chunks.append("+")
        for chunk in chunks:
            self.send_raw(f"AUTHENTICATE {chunk}")
        self._wait_for(
            lambda m: m.command == "903",
            self._remaining(deadline),
            "903 (SASL success)",
            fail=sasl_error,
        )

    # ----------------------------------------------------------------------- reader side

    def _read_loop(self) -> None:
        buffer = b""
        reason = "connection closed by the server"
        try:
            while True:
                try:
                    data = self._sock.recv(65536)
                except OSError as exc:
                    reason = f"connection error: {exc}"
                    break
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    raw = raw.rstrip(b"\r")
                    if raw:
                        self._on_line(raw)
        finally:
            with self._cond:
                if self._closing:
                    reason = "connection closed by the test"
                self._close_reason = reason
                self._closed.set()
                self._registration_over.set()
                self._cond.notify_all()

    def _on_line(self, raw: bytes) -> None:
        text = decode_line(raw)
        msg = parse_message(text)
        if msg.command == "PING":
            token = msg.params[-1] if msg.params else ""
            with contextlib.suppress(OSError):
                self._send(f"PONG :{token}\r\n".encode())
        elif msg.command == "NICK" and msg.nick and fold(msg.nick) == fold(self.current_nick):
            self.current_nick = msg.trailing
        elif msg.command == "005":
            for token in msg.params[1:-1]:
                name, _, value = token.partition("=")
                self.isupport[name] = value
        elif msg.command == "900" and len(msg.params) >= 3:
            self.account = msg.params[2]
        with self._cond:
            self._lines.append(text)
            self._messages.append(msg)
            if msg.command == "001" or msg.command in _REGISTRATION_ERRORS:
                self._registration_over.set()
            self._cond.notify_all()

    # ------------------------------------------------------------------------- matching

    def _matcher(
        self,
        pattern: Pattern,
        command: Commands,
        source: str | None,
        target: str | None,
        where: Where = None,
    ) -> Callable[[Message], bool]:
        regex = _compile(pattern)
        commands = _command_set(command)
        source_f = fold(source) if source is not None else None
        target_f = fold(target) if target is not None else None

        def match(msg: Message) -> bool:
            if commands is not None and msg.command not in commands:
                return False
            if source_f is not None and fold(msg.nick or "") != source_f:
                return False
            if target_f is not None and fold(msg.target or "") != target_f:
                return False
            if regex is not None and regex.search(msg.trailing) is None:
                return False
            return where is None or where(msg)

        return match

    def _recent(self) -> str:
        with self._cond:
            start = max(0, len(self._messages) - RECENT_LINES)
            rows = [
                ("* " if self._is_consumed(i) else "  ") + self._messages[i].raw
                for i in range(start, len(self._messages))
            ]
        if not rows:
            return "  (nothing received)"
        return "\n".join(rows)

    def _is_consumed(self, index: int) -> bool:
        return index < self._first_unconsumed or index in self._consumed

    def _consume(self, index: int) -> None:
        self._consumed.add(index)
        while self._first_unconsumed in self._consumed:
            self._consumed.discard(self._first_unconsumed)
            self._first_unconsumed += 1

    def _failure(self, headline: str) -> AssertionError:
        return AssertionError(
            f"{self.current_nick}: {headline}\n"
            f"last {RECENT_LINES} lines received (oldest first; * = already consumed):\n"
            f"{self._recent()}"
        )

    def _wait_for(
        self,
        predicate: Callable[[Message], bool],
        timeout: float,
        what: str,
        *,
        fail: Callable[[Message], bool] | None = None,
    ) -> Message:
        """Consume and return the first unconsumed message matching `predicate`.

        A message matching `fail` (checked first) ends the wait with an AssertionError, so
        error numerics surface immediately instead of as a timeout.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            index = self._first_unconsumed
            while True:
                while index < len(self._messages):
                    if not self._is_consumed(index):
                        msg = self._messages[index]
                        if fail is not None and fail(msg):
                            self._consume(index)
                            raise self._failure(f"expected {what}, got error: {msg.raw}")
                        if predicate(msg):
                            self._consume(index)
                            return msg
                    index += 1
                if self._closed.is_set():
                    raise self._failure(f"expected {what}; {self._close_reason}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._failure(f"expected {what} within {timeout:.2f} s; none arrived")
                self._cond.wait(remaining)

    def expect(
        self,
        pattern: Pattern = None,
        timeout: float = 5,
        command: Commands = "PRIVMSG",
        source: str | None = None,
        target: str | None = None,
        *,
        where: Where = None,
    ) -> Message:
        """Return (and consume) the first not yet consumed message that matches.

        `pattern` is a regex searched in the trailing text (None: any text); `command` is one
        command/numeric, several, or None for any; `source` is the sender's nick; `target` the
        first parameter; `where` a predicate on the `Message` for anything else (a numeric's
        parameters, a tag). Messages that arrived before the call count too, as long as no earlier
        `expect` returned them. Fails with the last lines received when nothing matches within
        `timeout` or when the connection closes.
        """
        return self._wait_for(
            self._matcher(pattern, command, source, target, where),
            timeout,
            _describe(pattern, command, source, target, where),
        )

    def expect_none(
        self,
        pattern: Pattern = None,
        within: float = 0.5,
        command: Commands = "PRIVMSG",
        source: str | None = None,
        target: str | None = None,
        *,
        where: Where = None,
        include_pending: bool = False,
    ) -> None:
        """Assert that no matching message arrives within `within` seconds.

        This is the one wait that runs for its whole window: absence can only be observed by
        waiting. Only messages received after the call started are considered, unless
        `include_pending=True`, which also checks those already received but not consumed.
        `where` is as in `expect`. Nothing is consumed.
        """
        match = self._matcher(pattern, command, source, target, where)
        deadline = time.monotonic() + within
        with self._cond:
            index = self._first_unconsumed if include_pending else len(self._messages)
            while True:
                while index < len(self._messages):
                    msg = self._messages[index]
                    if not self._is_consumed(index) and match(msg):
                        what = _describe(pattern, command, source, target, where)
                        raise self._failure(
                            f"expected no {what} within {within:.2f} s; got {msg.raw}"
                        )
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed.is_set():
                    return
                self._cond.wait(remaining)

    def expect_none_before(
        self,
        pattern: Pattern = None,
        command: Commands = "PRIVMSG",
        source: str | None = None,
        target: str | None = None,
        *,
        marker: Callable[[], Message],
        where: Where = None,
        include_pending: bool = True,
    ) -> Message:
        """Assert that no matching message comes before the marker; return the marker.

        The negative check that holds on a loaded machine: instead of a window of wall-clock
        time, it ends on a message that must come after anything the check is about, such as
        the bot's answer to a ``!ping`` sent after the action (the bot answers in order).
        ``marker`` waits for that message, typically ``lambda: client.expect(...)``, with
        ``expect``'s generous timeout. Messages already received but not consumed count too,
        unless ``include_pending=False``. Nothing but the marker is consumed.
        """
        match = self._matcher(pattern, command, source, target, where)
        with self._cond:
            start = self._first_unconsumed if include_pending else len(self._messages)
        found = marker()
        with self._cond:
            after = range(start, len(self._messages))
            end = next((i for i in after if self._messages[i] is found), start)
            for index in range(start, end):
                msg = self._messages[index]
                if not self._is_consumed(index) and match(msg):
                    what = _describe(pattern, command, source, target, where)
                    raise self._failure(f"expected no {what} before {found.raw}; got {msg.raw}")
        return found

    def expect_closed(self, timeout: float = 5) -> str:
        """Wait until the connection is closed (by the server or us); return the reason.

        For tests of server restarts, kicks and ping timeouts.
        """
        if not self._closed.wait(timeout):
            raise self._failure(f"expected the connection to close within {timeout:.2f} s")
        return self._close_reason

    def drain(self) -> list[Message]:
        """Consume and return every message received so far that no `expect` returned.

        For a fixture that reuses connections across tests: what one test left unread must not
        answer the next one's `expect`.
        """
        with self._cond:
            start = self._first_unconsumed
            drained = [
                self._messages[i]
                for i in range(start, len(self._messages))
                if not self._is_consumed(i)
            ]
            self._consumed.clear()
            self._first_unconsumed = len(self._messages)
        return drained

    # -------------------------------------------------------------------------- sending

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self._sock.sendall(data)

    def send_raw(self, line: str | bytes, *, crlf: bool = True) -> None:
        """Send one line as is; bytes are sent untouched so tests can send invalid UTF-8,
        a bare CR or a NUL. CRLF is appended unless `crlf=False`."""
        data = line.encode("utf-8") if isinstance(line, str) else bytes(line)
        self._send(data + b"\r\n" if crlf else data)

    @staticmethod
    def _check_text(text: str) -> None:
        if any(c in text for c in "\r\n\0"):
            raise ValueError("CR, LF and NUL would split or break the line: use send_raw()")

    def say(self, target: str, text: str) -> None:
        """Send a PRIVMSG (no wait: use `expect` on the receiving side)."""
        self._check_text(text)
        self.send_raw(f"PRIVMSG {target} :{text}")

    def notice(self, target: str, text: str) -> None:
        """Send a NOTICE (no wait)."""
        self._check_text(text)
        self.send_raw(f"NOTICE {target} :{text}")

    def join(self, channel: str, timeout: float = 5) -> list[str]:
        """Join and wait for our JOIN echo and the end of NAMES (366).

        Returns the names the server listed (with their status prefixes, e.g. "@alice"), so a
        test knows the channel state it starts from. A join error numeric fails at once.
        """
        deadline = time.monotonic() + timeout
        chan = fold(channel)
        me = fold(self.current_nick)
        self.send_raw(f"JOIN {channel}")
        self._wait_for(
            lambda m: (
                m.command == "JOIN" and fold(m.nick or "") == me and fold(m.target or "") == chan
            ),
            self._remaining(deadline),
            f"JOIN echo for {channel}",
            fail=lambda m: (
                m.command in _JOIN_ERRORS and len(m.params) >= 2 and fold(m.params[1]) == chan
            ),
        )
        names: list[str] = []
        while True:
            msg = self._wait_for(
                lambda m: (
                    (m.command == "353" and len(m.params) >= 4 and fold(m.params[2]) == chan)
                    or (m.command == "366" and len(m.params) >= 2 and fold(m.params[1]) == chan)
                ),
                self._remaining(deadline),
                f"NAMES (353/366) for {channel}",
            )
            if msg.command == "366":
                return names
            names.extend(msg.trailing.split())

    def part(self, channel: str, reason: str | None = None, timeout: float = 5) -> None:
        """Leave a channel and wait for our PART echo."""
        chan = fold(channel)
        me = fold(self.current_nick)
        self.send_raw(f"PART {channel}" + (f" :{reason}" if reason is not None else ""))
        self._wait_for(
            lambda m: (
                m.command == "PART" and fold(m.nick or "") == me and fold(m.target or "") == chan
            ),
            timeout,
            f"PART echo for {channel}",
            fail=lambda m: m.command in {"403", "442"},
        )

    def nick(self, newnick: str, timeout: float = 5) -> None:
        """Change nick and wait until the server confirms it; a refusal fails at once."""
        old, new = fold(self.current_nick), fold(newnick)
        self.send_raw(f"NICK {newnick}")
        # The new nick must match too: someone who held our current nick earlier may have
        # changed it in a shared channel, and that NICK line may still be unconsumed.
        self._wait_for(
            lambda m: m.command == "NICK" and fold(m.nick or "") == old and fold(m.trailing) == new,
            timeout,
            f"NICK change to {newnick}",
            fail=lambda m: m.command in _NICK_ERRORS,
        )

    def away(self, text: str | None, timeout: float = 5) -> None:
        """Set (text) or clear (None) the away status and wait for 306/305."""
        if text is None:
            self.send_raw("AWAY")
            self._wait_for(lambda m: m.command == "305", timeout, "305 (no longer away)")
        else:
            self._check_text(text)
            self.send_raw(f"AWAY :{text}")
            self._wait_for(lambda m: m.command == "306", timeout, "306 (now away)")

    # ------------------------------------------------------------------------- NickServ

    @staticmethod
    def _from_nickserv(msg: Message) -> bool:
        # Atheme run with -n also NOTICEs every user from the server name: not NickServ.
        return msg.command == "NOTICE" and msg.nick == "NickServ"

    def nickserv_register(self, password: str, timeout: float = 5) -> None:
        """REGISTER the current nick with NickServ (email ``<nick>@example.org``) and wait for
        its answer; Atheme logs this connection in at once (900 follows, left unread).

        The confirmation is a NickServ NOTICE saying ``is now registered``; any other NickServ
        NOTICE is a refusal and fails at once.
        """
        self.say("NickServ", f"REGISTER {password} {self.current_nick}@example.org")
        self.expect_nickserv_registered(timeout)

    def expect_nickserv_registered(self, timeout: float = 5) -> None:
        """Wait for NickServ's answer to a REGISTER already sent; fail unless it confirms.

        Split from `nickserv_register` so that many clients can send REGISTER first.
        """
        answer = self._wait_for(self._from_nickserv, timeout, "NickServ's answer to REGISTER")
        if "is now registered" not in answer.trailing:
            raise self._failure(f"NickServ refused to register: {answer.raw}")

    def nickserv_identify(self, account: str, password: str, timeout: float = 5) -> None:
        """Log in with NickServ IDENTIFY and wait for 900 (sent with the ACCOUNT broadcast,
        so once it is here every other user's ``account-notify`` line has been written).

        A NickServ refusal fails at once.
        """
        self.say("NickServ", f"IDENTIFY {account} {password}")

        def refused(m: Message) -> bool:
            text = m.trailing.lower()
            return self._from_nickserv(m) and any(w in text for w in _IDENTIFY_REFUSALS)

        self._wait_for(lambda m: m.command == "900", timeout, "900 (logged in)", fail=refused)
        # NickServ's own confirmation precedes 900: consume it so it can't answer a later wait.
        self._wait_for(self._from_nickserv, timeout, "NickServ's IDENTIFY confirmation")

    def nickserv_logout(self, timeout: float = 5) -> None:
        """Log out with NickServ LOGOUT and wait for 901 (see `nickserv_identify`).

        NickServ's NOTICE comes *before* the server applies the logout, so a test that waited
        only for the NOTICE could still be seen as logged in by its next line.
        """
        self.say("NickServ", "LOGOUT")
        self._wait_for(lambda m: m.command == "901", timeout, "901 (logged out)")
        self._wait_for(self._from_nickserv, timeout, "NickServ's LOGOUT confirmation")

    def quit(self, reason: str | None = None, timeout: float = 2) -> None:
        """Send QUIT, wait (bounded) until the server closes the link, then close.

        Waiting matters: once the server has closed, the nick is free for the next test.
        """
        if not self._closed.is_set():
            with contextlib.suppress(OSError):
                self.send_raw("QUIT" + (f" :{reason}" if reason is not None else ""))
            self._closed.wait(timeout)
        self.close()

    def close(self) -> None:
        """Drop the connection without QUIT and stop the reader thread; safe to call twice."""
        with self._cond:
            if not self._closed.is_set():
                self._closing = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        self._sock.close()

    # ------------------------------------------------------------------------ inspection

    @property
    def lines(self) -> list[str]:
        """Every line received so far, decoded, without CRLF (a copy)."""
        with self._cond:
            return list(self._lines)

    @property
    def messages(self) -> list[Message]:
        """Every message received so far, parsed (a copy)."""
        with self._cond:
            return list(self._messages)

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""
        return self._closed.is_set()

    def __enter__(self) -> IRCTestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.quit()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<IRCTestClient {self.current_nick} {self.host}:{self.port} {state}>"


def nothing_before_pong(
    client: IRCTestClient,
    bot: str,
    pattern: Pattern = None,
    command: Commands = "PRIVMSG",
    *,
    private: bool = True,
    prefix: str = "!",
) -> None:
    """Nothing from ``bot`` matching ``pattern`` waits unread for ``client``, nor comes before
    the bot's answer to a ``!ping`` the client sends it now.

    The bot answers in order, so whatever it was going to send this person because of what
    came before is on its way before that answer: the check ends on the answer, however slow
    the machine, instead of on a window of time. ``private`` (the default) looks only at
    messages to the client itself; ``private=False`` at channel messages too.
    """
    client.say(bot, f"{prefix}ping marker")
    me = client.current_nick
    client.expect_none_before(
        pattern,
        command,
        source=bot,
        target=me if private else None,
        marker=lambda: client.expect(r"^pong marker$", source=bot, target=me),
    )


@contextlib.contextmanager
def renamed(client: IRCTestClient, nick: str) -> Iterator[IRCTestClient]:
    """Give ``client`` the nick ``nick`` for the block, then its own back (each change waits
    for the server's confirmation)."""
    old = client.current_nick
    client.nick(nick)
    try:
        yield client
    finally:
        client.nick(old)

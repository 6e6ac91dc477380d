"""A scripted one-client IRC "server" for replaying exact server lines.

Why: the bot's CAP/SASL negotiation must cope with what real servers actually send, quirks
included (InspIRCd's `AUTHENTICATE :+`, `CAP * ACK :sasl ` with a trailing space, a NAK, 904,
a server that never answers). ngircd cannot produce those, and a services network is slow to
start; a test that plays the server side line by line is exact and fast.

The listener binds 127.0.0.1 on a free port, accepts ONE client in a background thread and
then closes the listening socket, so a client that reconnects gets "connection refused" (a
clear signal) instead of hanging in an accept backlog nobody serves.

With ``ssl_context`` it speaks TLS: the handshake runs right after the accept, and one that
fails (the client refused the certificate) ends the connection, kept in ``tls_error``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time

from tests.support.client import decode_line

__all__ = ["ScriptedServer"]

RECENT_LINES = 20


class ScriptedServer:
    """Plays the server side of one client connection, driven by the test.

    Every wait is bounded by a timeout and ends as soon as the awaited event happens.
    """

    def __init__(
        self, host: str = "127.0.0.1", *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Bind and listen at once (so `port` is known); the client is accepted in background.

        `ssl_context` (server side) makes it a TLS server.
        """
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(1)
        self.host: str = host
        self.port: int = int(self._listener.getsockname()[1])
        #: Lines `expect_line(skip=True)` passed over, for debugging.
        self.skipped: list[str] = []
        #: Why the TLS handshake failed, if it did.
        self.tls_error: OSError | None = None
        self._ssl_context = ssl_context
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._raw_lines: list[bytes] = []
        self._cursor = 0
        self._client: socket.socket | None = None
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._stopping = False
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._serve, name=f"scripted-server-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) for the client under test."""
        return (self.host, self.port)

    # ------------------------------------------------------------------------ background

    def _serve(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:  # stop() shut the listener down before anyone connected
            return
        finally:
            self._close_listener()
        if self._ssl_context is not None:
            try:
                client.settimeout(5)  # a bounded handshake
                client = self._ssl_context.wrap_socket(client, server_side=True)
                client.settimeout(None)
            except OSError as exc:
                client.close()
                with self._cond:
                    self.tls_error = exc
                    self._disconnected.set()
                    self._cond.notify_all()
                return
        with self._cond:
            if self._stopping:
                client.close()
                return
            self._client = client
            self._connected.set()
            self._cond.notify_all()
        buffer = b""
        try:
            while True:
                try:
                    data = client.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    raw = raw.rstrip(b"\r")
                    with self._cond:
                        self._raw_lines.append(raw)
                        self._lines.append(decode_line(raw))
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._disconnected.set()
                self._cond.notify_all()

    def _close_listener(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()

    # ------------------------------------------------------------------------- scripting

    def wait_for_client(self, timeout: float = 5) -> None:
        """Wait until the client has connected; AssertionError if it does not in time."""
        if not self._connected.wait(timeout):
            why = f" (TLS handshake failed: {self.tls_error})" if self.tls_error else ""
            raise AssertionError(
                f"no client connected to {self.host}:{self.port} within {timeout:.2f} s{why}"
            )

    def expect_line(
        self, regex: str | re.Pattern[str], timeout: float = 5, *, skip: bool = False
    ) -> str:
        """Return the next unread line from the client; it must match `regex` (re.search).

        No line is ever skipped silently: by default the very next line must match, and a
        different one fails the test at once, showing it, because in protocol tests the order is
        the point. Pass `skip=True` to pass over non-matching lines on purpose; they are kept in
        `self.skipped` and shown in failure messages. Fails too when the client disconnects or
        nothing arrives within `timeout`.
        """
        rx = re.compile(regex) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self._lines):
                    line = self._lines[self._cursor]
                    self._cursor += 1
                    if rx.search(line):
                        return line
                    if not skip:
                        raise self._failure(
                            f"expected a line matching {rx.pattern!r}; the next line was {line!r}"
                        )
                    self.skipped.append(line)
                if self._disconnected.is_set():
                    raise self._failure(
                        f"expected a line matching {rx.pattern!r}; the client disconnected"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._failure(
                        f"expected a line matching {rx.pattern!r} within {timeout:.2f} s; "
                        "none arrived"
                    )
                self._cond.wait(remaining)

    def register_bot(self, caps: str = "", nick: str = "lcbot", channel: str = "#livechat") -> None:
        """Play a server through the bot's whole registration: CAP (offering ``caps``, which
        the bot is expected to request as they are), welcome, its JOIN and the WHO after it."""
        self.expect_line(r"^CAP LS 302$")
        self.expect_line(rf"^NICK {re.escape(nick)}$")
        self.expect_line(r"^USER ")
        self.send(f":irc.test CAP * LS :{caps}")
        if caps:
            self.expect_line(rf"^CAP REQ :{re.escape(caps)}$")
            self.send(f":irc.test CAP * ACK :{caps}")
        self.expect_line(r"^CAP END$")
        self.send(f":irc.test 001 {nick} :Welcome")
        self.expect_line(rf"^JOIN {re.escape(channel)}$")
        self.send(f":{nick}!~livechat@127.0.0.1 JOIN {channel}")
        self.expect_line(rf"^WHO {re.escape(channel)}")

    def expect_disconnect(self, timeout: float = 5) -> None:
        """Wait until the client closes its side (e.g. gives up on a silent server)."""
        if not self._disconnected.wait(timeout):
            raise self._failure(f"expected the client to disconnect within {timeout:.2f} s")

    def send(self, line: str | bytes, timeout: float = 5) -> None:
        """Send one raw line to the client, CRLF added; waits (bounded) for the client first."""
        self.wait_for_client(timeout)
        data = line.encode("utf-8") if isinstance(line, str) else bytes(line)
        assert self._client is not None
        with self._send_lock:
            self._client.sendall(data + b"\r\n")

    def close_client(self) -> None:
        """Close the connection from the server side, as a server that drops a client would."""
        client = self._client
        if client is None:
            return
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        self._disconnected.wait(2)
        client.close()

    def stop(self) -> None:
        """Close everything and stop the background thread (bounded); safe to call twice."""
        with self._cond:
            self._stopping = True
        with contextlib.suppress(OSError):  # wakes a blocked accept() on Linux
            self._listener.shutdown(socket.SHUT_RDWR)
        self._close_listener()
        self.close_client()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    # ------------------------------------------------------------------------ inspection

    @property
    def lines(self) -> list[str]:
        """Every line received from the client, decoded, without CRLF (a copy)."""
        with self._cond:
            return list(self._lines)

    @property
    def raw_lines(self) -> list[bytes]:
        """Every line received from the client as bytes, without CRLF (a copy)."""
        with self._cond:
            return list(self._raw_lines)

    @property
    def connected(self) -> bool:
        """True once a client has connected (stays True after it leaves)."""
        return self._connected.is_set()

    def _failure(self, headline: str) -> AssertionError:
        with self._cond:
            recent = self._lines[-RECENT_LINES:]
            skipped = list(self.skipped[-RECENT_LINES:])
        shown = "\n".join(f"  {line}" for line in recent) or "  (nothing received)"
        text = f"ScriptedServer {self.port}: {headline}\nlast lines from the client:\n{shown}"
        if skipped:
            text += "\nskipped on purpose:\n" + "\n".join(f"  {line}" for line in skipped)
        return AssertionError(text)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ScriptedServer {self.host}:{self.port} lines={len(self._lines)}>"

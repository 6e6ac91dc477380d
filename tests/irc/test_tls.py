"""TLS to the IRC server: the certificate and the host name are verified (SNI on the host
name), an untrusted server is refused before a single IRC line goes out, and the refusal is
logged and retried like any failed connection.

The server is a scripted one wrapped in ``ssl`` with a self-signed certificate for
``localhost`` made by ``openssl`` for this module. The bot builds its context with
``ssl.create_default_context()``, the system's trust store, which OpenSSL lets the
``SSL_CERT_FILE`` environment variable replace: that is how a private CA is trusted.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.botthread import BotThread, bot_config
from tests.support.fakeserver import ScriptedServer

pytestmark = pytest.mark.timeout(60)

HOST = "localhost"  # the name in the certificate; /etc/hosts maps it to 127.0.0.1


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Certificate:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={HOST}",
            "-addext", f"subjectAltName=DNS:{HOST}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return Certificate(cert, key)


def server_context(certificate: Certificate, sni_seen: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)

    def sni(_sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sni_seen.append(server_name)

    context.sni_callback = sni
    return context


@pytest.fixture
def start_bot(tmp_path):
    bots: list[BotThread] = []
    servers: list[ScriptedServer] = []

    def start(port: int, host: str = HOST, server: ScriptedServer | None = None, **irc):
        config = bot_config(host, port, f"sqlite:///{tmp_path}/bot.db", irc={"tls": True, **irc})
        bot = BotThread(config).start(wait_joined=False)
        bots.append(bot)
        if server is not None:
            servers.append(server)
        return bot

    yield start
    for server in servers:
        server.close_client()
    for bot in bots:
        bot.stop()


def register_over_tls(server: ScriptedServer) -> None:
    """The whole registration, then a command and its answer, all through TLS."""
    server.register_bot()
    server.send(":tls_user!~u@127.0.0.1 PRIVMSG #livechat :!ping secure")
    server.expect_line(r"^PRIVMSG #livechat :tls_user: pong secure$")


# ------------------------------------------------------------------------- connects


def test_trusted_certificate_connects_and_sni_names_the_host(certificate, start_bot, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    sni_seen: list[str | None] = []
    server = ScriptedServer(ssl_context=server_context(certificate, sni_seen))
    start_bot(server.port, server=server, tls_verify=True)
    server.wait_for_client()
    assert server.tls_error is None
    assert sni_seen == [HOST]
    register_over_tls(server)


def test_without_verification_an_untrusted_certificate_connects(certificate, start_bot):
    sni_seen: list[str | None] = []
    server = ScriptedServer(ssl_context=server_context(certificate, sni_seen))
    start_bot(server.port, server=server, tls_verify=False)
    server.wait_for_client()
    assert sni_seen == [HOST]  # still sent: some networks route on it
    register_over_tls(server)


# -------------------------------------------------------------------------- refused


@dataclass
class Attempt:
    """One connection to :class:`HandshakeRecorder`: every byte the client sent, how the
    TLS handshake ended, and what it said in clear text if the handshake succeeded."""

    raw: bytes = b""
    error: ssl.SSLError | None = None
    completed: bool = False
    plaintext: bytes = b""


class HandshakeRecorder:
    """A TLS listener on 127.0.0.1 that accepts any number of connections, runs the server
    side of each handshake through memory BIOs (so it sees the raw bytes too) and records
    the outcome. A client that verifies the certificate aborts: ``error`` holds its alert."""

    def __init__(self, certificate: Certificate) -> None:
        #: The server names clients asked for (SNI), one per handshake.
        self.sni_seen: list[str | None] = []
        self.context = server_context(certificate, self.sni_seen)
        self.attempts: list[Attempt] = []
        self._cond = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with sock:
                attempt = self._handle(sock)
            with self._cond:
                self.attempts.append(attempt)
                self._cond.notify_all()

    def _handle(self, sock: socket.socket) -> Attempt:
        attempt = Attempt()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_side=True)
        sock.settimeout(3)

        def receive() -> bytes:
            try:
                data = sock.recv(65536)
            except OSError:
                return b""
            attempt.raw += data
            return data

        while True:
            try:
                tls.do_handshake()
                attempt.completed = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                attempt.error = exc
            if pending := outgoing.read():
                sock.sendall(pending)
            if attempt.completed or attempt.error:
                break
            data = receive()
            if not data:
                break
            incoming.write(data)
        # Whatever the client sends next: application data if the handshake completed,
        # anything at all (a clear-text fallback would show here) if it did not.
        while data := receive():
            if attempt.completed:
                incoming.write(data)
                with contextlib.suppress(ssl.SSLError):
                    attempt.plaintext += tls.read(65536)
        return attempt

    def wait_attempts(self, count: int, timeout: float) -> list[Attempt]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.attempts) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(self.attempts)} connection(s) within {timeout}s, wanted {count}"
                    )
                self._cond.wait(remaining)
            return list(self.attempts)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept() on Linux
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def recorder(certificate):
    server = HandshakeRecorder(certificate)
    yield server
    server.stop()


def assert_refused_and_retried(recorder, caplog, host: str, reason: str) -> None:
    # Three attempts (reconnect_min 0.2 s, max 1 s): the bot logs a refusal before it tries
    # again, so by the third attempt the first two refusals are in the log.
    attempts = recorder.wait_attempts(3, timeout=10)
    for attempt in attempts:
        assert attempt.raw[:1] == b"\x16", attempt.raw[:20]  # a TLS handshake record first
        assert not attempt.completed, "the bot accepted a certificate it must refuse"
        assert attempt.error is not None and "alert" in str(attempt.error), attempt.error
        assert attempt.plaintext == b""
        assert b"CAP" not in attempt.raw and b"NICK" not in attempt.raw
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "ircbot.transport"
    ]
    refusals = [m for m in warnings if m.startswith(f"cannot connect to {host}:{recorder.port}")]
    assert len(refusals) >= len(attempts) - 1, warnings
    assert all(reason in m and "\n" not in m for m in refusals), refusals
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reconnecting")]
    assert retries, "no reconnection was scheduled"


def test_untrusted_certificate_is_refused_logged_and_retried(
    certificate, recorder, start_bot, caplog
):
    caplog.set_level(logging.INFO)
    bot = start_bot(recorder.port, tls_verify=True)
    assert_refused_and_retried(recorder, caplog, HOST, "certificate verify failed")
    assert recorder.sni_seen[0] == HOST
    assert bot.error is None and not bot.bot.transport.registered


def test_a_trusted_certificate_for_another_name_is_refused(
    certificate, recorder, start_bot, caplog, monkeypatch
):
    # Trusted, but issued to "localhost" while the bot was told to reach 127.0.0.1.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    caplog.set_level(logging.INFO)
    start_bot(recorder.port, host="127.0.0.1", tls_verify=True)
    assert_refused_and_retried(recorder, caplog, "127.0.0.1", "mismatch")

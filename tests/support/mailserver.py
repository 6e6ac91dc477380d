"""A real SMTP server for tests: aiosmtpd in a process of its own, STARTTLS and AUTH on.

Why a process: the bot's mail must cross a real socket to a real server that speaks ESMTP,
upgrades with STARTTLS on a certificate the bot verifies, and checks a login; and a test must
be able to stop it (the endpoint is down) and start it again on the same port. aiosmtpd is
the test extra that does this (``setup.cfg``).

Run as a script (what :class:`MailServer` does)::

    python mailserver.py --port P --out DIR --cert C --key K [--implicit] [--login USER]

with the password expected for ``USER`` in the environment variable ``MAILSERVER_PASSWORD``.
Every message accepted is written to ``DIR`` as ``NNNN.eml`` (the bytes received) and
``NNNN.json`` (envelope, whether the session was encrypted and logged in), the JSON last
and by rename, so a reader never sees half a message. It prints ``READY`` once listening.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import json
import os
import signal
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.support.childserver import ChildServer

__all__ = ["MailServer", "Received"]


# -- the server process ---------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    counter = itertools.count(len(list(out.glob("*.json"))) + 1)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    password = os.environ.get("MAILSERVER_PASSWORD", "")

    class Save:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            n = next(counter)
            (out / f"{n:04d}.eml").write_bytes(envelope.original_content)
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": args.implicit or session.ssl is not None,
                "login": session.auth_data if session.authenticated else None,
            }
            tmp = out / f"{n:04d}.tmp"
            tmp.write_text(json.dumps(meta), encoding="utf-8")
            tmp.rename(out / f"{n:04d}.json")
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == args.login
            and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=args.login if ok else None)

    kwargs: dict[str, Any] = {}
    if args.login:
        # aiosmtpd counts only STARTTLS as TLS: with implicit TLS the whole session is one
        kwargs.update(authenticator=authenticate, auth_require_tls=not args.implicit)
    if args.implicit:
        controller = Controller(
            Save(), hostname="127.0.0.1", port=args.port, ssl_context=context, **kwargs
        )
    else:
        controller = Controller(
            Save(), hostname="127.0.0.1", port=args.port, tls_context=context, **kwargs
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controller.start()
    print("READY", flush=True)
    stop.wait()
    controller.stop()


# -- the fixture's side ----------------------------------------------------------------------------
class Received:
    """One message the server accepted: the parsed mail and its envelope."""

    def __init__(self, message: EmailMessage, meta: dict[str, Any]) -> None:
        self.message = message
        self.meta = meta

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        """The plain-text body as a mail reader shows it (line ends as ``\n``)."""
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n")

    def __repr__(self) -> str:
        return f"<Received {self.message['Subject']!r} to {self.meta['rcpt_tos']}>"


class MailServer(ChildServer):
    """The server process; :meth:`start` again after :meth:`stop` reuses the port and folder."""

    what = "the SMTP server"

    def __init__(
        self,
        port: int,
        out: Path,
        cert: Path,
        key: Path,
        *,
        implicit_tls: bool = False,
        login: str | None = None,
        password: str = "",
    ) -> None:
        args = ["--port", str(port), "--out", str(out), "--cert", str(cert)]
        args += ["--key", str(key)] + (["--implicit"] if implicit_tls else [])
        args += ["--login", login] if login else []
        super().__init__(
            "tests.support.mailserver", args, {**os.environ, "MAILSERVER_PASSWORD": password}, out
        )
        self.host, self.port = "127.0.0.1", port

    def messages(self) -> list[Received]:
        """Every message accepted so far, in order."""
        found = []
        for meta_path in sorted(self.out.glob("*.json")):
            raw = meta_path.with_suffix(".eml").read_bytes()
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(Received(parsed, json.loads(meta_path.read_text(encoding="utf-8"))))
        return found

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Wait (bounded, polling the folder) until ``count`` messages have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"{len(found)} of {count} mails arrived within {timeout} s")
            time.sleep(0.05)  # polling interval of a bounded wait on a folder

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--login")
    _serve(parser.parse_args())

"""Sending one mail over SMTP, with the standard library's ``smtplib`` and ``email``.

Why the standard library: ``smtplib`` speaks ESMTP, STARTTLS, implicit TLS and AUTH, and
``email.message.EmailMessage`` builds a correct MIME message (UTF-8 bodies, encoded
headers, and a refusal of any header holding a line break, so a name typed on IRC cannot
inject one). A sender that runs on its own thread needs nothing asynchronous.

``[notify] smtp_url`` says how to connect:

``smtps://[user@]host[:port]``
    TLS from the first byte (port 465 by default);
``smtp://[user@]host[:port]``
    plain TCP (port 25 by default, 587 for submission), upgraded with STARTTLS whenever the
    server offers it. The password is never sent over a connection that stayed plain: a
    server that asks for a login and offers no STARTTLS is an error, retried like any.

The certificate is checked against the system's CA store (or ``SSL_CERT_FILE``) and the
host name, unless ``smtp_tls_verify = false``.

Errors come out as :class:`SendError`, ``permanent`` when retrying cannot help (the server
refused the sender, the recipient or the message with a 5xx reply); anything else (no
connection, a timeout, a 4xx reply, a login refused) is retried by the sender.
"""

from __future__ import annotations

import email.utils
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

__all__ = ["Mailer", "SendError", "SmtpTarget", "compose"]

logger = logging.getLogger(__name__)


class SendError(Exception):
    """A send that did not happen; ``permanent``: do not try this message again."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, read from ``smtp_url``."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("smtp_url must be smtp://host[:port] or smtps://host[:port]")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
        )


def compose(
    *, sender: str, to: str, subject: str, body: str, message_id: str, date: float | None = None
) -> EmailMessage:
    """The message as sent: plain UTF-8 text, with the row's stable ``Message-ID``.

    ``message_id`` is the bare id (``abc@livechat-bot``); ``date`` a POSIX time (now if
    None). Raises ValueError if a header would hold a line break.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message["Date"] = email.utils.formatdate(date, localtime=False)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(body)
    return message


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _refused(code: int, text: str) -> SendError:
    return SendError(f"{code} {text}", permanent=500 <= code < 600)


class Mailer:
    """Sends one message per connection: mail here is a few a day, not a stream."""

    def __init__(
        self,
        target: SmtpTarget,
        *,
        password: str | None,
        timeout: float,
        verify: bool = True,
    ) -> None:
        self.target = target
        self._password = password
        self.timeout = timeout
        self.verify = verify

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()  # made per send: SSL_CERT_FILE read then
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        if t.implicit_tls:
            return smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=self._tls())
        client = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            client.ehlo()
            if client.has_extn("starttls"):
                client.starttls(context=self._tls())
                client.ehlo()
        except BaseException:
            client.close()
            raise
        return client

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to the server, or raise :class:`SendError`."""
        t = self.target
        try:
            with self._connect() as client:
                if t.username is not None:
                    if not isinstance(client.sock, ssl.SSLSocket):
                        raise SendError(
                            f"{t.host} offers no STARTTLS: the password is not sent in clear"
                        )
                    client.login(t.username, self._password or "")
                client.send_message(message)
        except SendError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _refused(code, _text(reply)) from None
        except smtplib.SMTPResponseException as exc:  # sender, data, auth refused...
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                raise SendError(f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
            raise _refused(exc.smtp_code, _text(exc.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as exc:  # no connection, TLS, timeout
            raise SendError(f"{type(exc).__name__}: {exc}") from None

"""Posting one event to the webhook, signed, with the standard library's ``http.client``.

Why ``http.client`` and not ``urllib.request``: urllib follows a redirect of a POST by
sending a GET without the body, which would lose the event while looking like success; here
a redirect is an answer like any other (not 2xx: an error). A team bridges to Matrix, Slack
or Discourse with a small receiver of its own, so no client library is worth its weight.

What the receiver gets, besides the JSON body:

``X-Livechat-Signature: sha256=<hex>``
    HMAC-SHA256 of the exact body bytes with the shared secret (:func:`signature`); the
    receiver computes the same and compares in constant time (``hmac.compare_digest``).
``Idempotency-Key: <id>``
    the event's stable id, the same on every retry (also in the body as ``"id"``).
``X-Livechat-Event: <name>``
    ``ready``, ``promoted``, ``overdue`` or ``rejected`` (also in the body as ``"event"``).

A 2xx answer is success; 408, 429 and 5xx are retried, as are failures to connect; any
other status is a permanent refusal (:class:`~ircbot.mailer.SendError`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
from urllib.parse import urlsplit

from ircbot.mailer import SendError

__all__ = ["SIGNATURE_HEADER", "WebhookPoster", "signature", "verify"]

SIGNATURE_HEADER = "X-Livechat-Signature"
_RETRY_STATUSES = {408, 429}


def signature(secret: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC-SHA256 of ``body`` under ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: true if ``header`` is the signature of ``body``."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


class WebhookPoster:
    """Posts JSON documents to one URL, one connection each (events are a few a day)."""

    def __init__(self, url: str, secret: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an http:// or https:// URL")
        self._parts = parts
        self._host = parts.hostname
        self._secret = secret
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        p = self._parts
        if p.scheme == "https":
            return http.client.HTTPSConnection(
                self._host, p.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, p.port, timeout=self.timeout)

    def post(self, body: str, *, event: str, key: str) -> None:
        """Post ``body``; return on a 2xx answer, else raise :class:`SendError`."""
        data = body.encode("utf-8")
        path = self._parts.path or "/"
        if self._parts.query:
            path += f"?{self._parts.query}"
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "livechat-bot",
            "Idempotency-Key": key,
            "X-Livechat-Event": event,
            SIGNATURE_HEADER: signature(self._secret, data),
        }
        connection = self._connection()
        try:
            connection.request("POST", path, body=data, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            status, reason = response.status, response.reason
        except (OSError, http.client.HTTPException) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if 200 <= status < 300:
            return
        permanent = 400 <= status < 500 and status not in _RETRY_STATUSES
        if 300 <= status < 400:
            permanent = True  # a moved endpoint is for a person to fix in the config
        raise SendError(f"HTTP {status} {reason}", permanent=permanent)

"""Asking the server who is logged in as whom (WHOX), at most once a poll period.

The delivery's way to find a recipient the server never told the bot about: a server without
``extended-join``/``account-notify`` says accounts only when asked. One ``WHO`` line per
joined channel, at most once per ``[bot] away_poll``, and only while someone present is not
known for certain (if everyone is, the person waited for is not here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ircbot.identity_policy import IdentityPolicy
from ircbot.jobs import clamp
from ircbot.network import NetworkState

__all__ = ["AccountRefresh"]

logger = logging.getLogger(__name__)


class AccountRefresh:
    """Call it to ask (WHOX) for the accounts of everyone in the joined channels, throttled."""

    def __init__(
        self,
        *,
        network: NetworkState,
        policy: IdentityPolicy,
        send: Callable[[str], Any],
        has_whox: Callable[[], bool],
        clock: Callable[[], float],
        every: float,
    ) -> None:
        self.network = network
        self.policy = policy
        self.send = send
        self.has_whox = has_whox
        self.clock = clock
        self.every = every
        self._next = 0.0

    def __call__(self) -> None:
        """Ask, unless asked less than a period ago, the server has no WHOX (a plain WHO
        tells no accounts) or everyone present is known."""
        now = self.clock()
        due = clamp(self._next, self.every, now)  # a step back of the clock: not stuck
        if now < due or not self.has_whox():
            return
        if all(self.policy.certain(u) for u in self.network.users.values() if u.channels):
            return  # everyone present is known: the person waited for is not here
        self._next = now + self.every
        for channel in sorted(self.network.joined):
            self.send(f"WHO {channel} %tnuhaf,42")

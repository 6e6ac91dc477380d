"""A WHOIS client: ask the server about nicks, and hand the answers back.

The bot asks ``WHOIS nick`` when tracked state cannot tell who holds a nick (see
:mod:`ircbot.identity_policy`, which decides what an answer proves) and holds the command
until numeric 318 (end of WHOIS) arrives: 311 tells the user@host, 330 the account, 401 that
nobody has the nick. A lookup that gets no answer within ``[bot] whois_timeout``, or whose
nick changes hands (NICK, QUIT) while it is out, ends with no answer (``None``), and the
command is refused with "couldn't verify", never run as if the nick alone were proof.
Concurrent lookups of one nick share one WHOIS.

The timeout counts from when the WHOIS is written to the socket, not from when it was
queued: a busy output queue must not turn a slow queue into "could not verify". Until then a
lookup waits at most ``_UNSENT_GRACE`` more (a line that can never be written), and a
disconnect fails it at once (:meth:`Resolver.reset`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ircbot.network import NetworkState

__all__ = ["Resolver", "WhoisResult"]

logger = logging.getLogger(__name__)
_UNSENT_GRACE = 120.0
# How long "nobody has that nick" (401) is believed without asking again. A server charges
# each WHOIS a penalty (ngircd: about 3 s during which it reads nothing more from the bot),
# so one person saying "!history Gone" in a loop must not cost a WHOIS a line and hold up
# everyone's answers. Any JOIN, NICK or QUIT naming the nick ends the belief at once; what
# the bot cannot see (someone outside its channels taking the nick) it learns at most this
# late, and then only for commands about that nick, never about who is asking.
OFFLINE_TTL = 30.0


@dataclass
class WhoisResult:
    nick: str
    online: bool = False
    user: str = ""
    host: str = ""
    account: str | None = None
    away: bool = False


@dataclass
class _Pending:
    result: WhoisResult
    deadline: float
    callbacks: list[Callable[[WhoisResult | None], None]] = field(default_factory=list)


class Resolver:
    """Asks WHOIS and collects the answers; ``send(line, on_sent)`` queues one raw line
    and calls ``on_sent`` once it is on the socket."""

    def __init__(
        self,
        network: NetworkState,
        send: Callable[[str, Callable[[], None]], None],
        clock: Callable[[], float],
        timeout: float,
    ) -> None:
        self.network = network
        self.send = send
        self.clock = clock
        self.timeout = timeout
        self._pending: dict[str, _Pending] = {}
        self._offline: dict[str, float] = {}  # folded nick -> until when 401 is believed

    @property
    def busy(self) -> bool:
        """A lookup is in flight (its answer may still make the bot send something)."""
        return bool(self._pending)

    def resolve(
        self,
        nicks: Sequence[str],
        done: Callable[[dict[str, WhoisResult | None]], None],
    ) -> None:
        """WHOIS each of ``nicks`` (shared with lookups in flight), then call ``done`` once."""
        results: dict[str, WhoisResult | None] = {}
        waiting = {self.network.fold(n) for n in nicks}
        if not waiting:
            done(results)
            return

        def one(folded: str) -> Callable[[WhoisResult | None], None]:
            def finished(result: WhoisResult | None) -> None:
                results[folded] = result
                waiting.discard(folded)
                if not waiting:
                    done(results)

            return finished

        now = self.clock()
        for folded in list(waiting):
            if self._offline.get(folded, 0.0) > now:
                one(folded)(WhoisResult(nick=folded, online=False))
                continue
            pending = self._pending.get(folded)
            if pending is None:
                pending = self._pending[folded] = _Pending(
                    WhoisResult(nick=folded), self.clock() + _UNSENT_GRACE + self.timeout
                )
                self.send(f"WHOIS {folded}", self._on_the_wire(pending))
            pending.callbacks.append(one(folded))

    def _on_the_wire(self, pending: _Pending) -> Callable[[], None]:
        def sent() -> None:
            pending.deadline = self.clock() + self.timeout

        return sent

    # -- server replies --------------------------------------------------------------------
    def on_whois_user(self, nick: str, user: str, host: str) -> None:
        pending = self._pending.get(self.network.fold(nick))
        if pending:
            pending.result.nick, pending.result.online = nick, True
            pending.result.user, pending.result.host = user, host

    def on_whois_account(self, nick: str, account: str) -> None:
        pending = self._pending.get(self.network.fold(nick))
        if pending:
            pending.result.account = account
        tracked = self.network.get(nick)
        if tracked:  # a fresh answer, but only certain while account-notify keeps it so
            self.network.set_account(nick, account, certain=tracked.account_certain)

    def on_whois_away(self, nick: str) -> None:
        """301 RPL_AWAY, part of a WHOIS answer (or of a PRIVMSG to someone away)."""
        pending = self._pending.get(self.network.fold(nick))
        if pending:
            pending.result.away = True
        tracked = self.network.get(nick)
        if tracked:
            tracked.away = True

    def on_no_such_nick(self, nick: str) -> None:
        pending = self._pending.get(self.network.fold(nick))
        if pending:
            pending.result.online = False

    def on_end_of_whois(self, nick: str) -> None:
        folded = self.network.fold(nick)
        pending = self._pending.pop(folded, None)
        if pending is None:
            return
        if pending.result.online:
            self._offline.pop(folded, None)
        else:
            if len(self._offline) > 1000:
                now = self.clock()
                self._offline = {n: t for n, t in self._offline.items() if t > now}
            self._offline[folded] = self.clock() + OFFLINE_TTL
        tracked = self.network.get(nick)
        if tracked and pending.result.online:
            tracked.away = pending.result.away
            if pending.result.account is None:
                self.network.set_account(nick, None, certain=tracked.account_certain)
        for callback in pending.callbacks:
            callback(pending.result)

    def cancel(self, nick: str) -> None:
        """``nick`` changed hands (NICK, QUIT): an answer still to come may be about
        someone else, so the lookups waiting for it end unanswered."""
        self.seen(nick)
        pending = self._pending.pop(self.network.fold(nick), None)
        if pending is not None:
            logger.info("WHOIS %s cancelled: the nick changed hands", nick)
            for callback in pending.callbacks:
                callback(None)

    def expire(self) -> None:
        """Fail lookups whose answer is overdue (called from the event loop's tick)."""
        if not self._pending:
            return
        now = self.clock()
        for folded, pending in list(self._pending.items()):
            if now >= pending.deadline:
                del self._pending[folded]
                logger.warning("WHOIS %s got no answer in %.1fs", folded, self.timeout)
                for callback in pending.callbacks:
                    callback(None)

    def seen(self, nick: str) -> None:
        """Someone uses ``nick`` now (JOIN, NICK): no longer believed offline."""
        self._offline.pop(self.network.fold(nick), None)

    def reset(self) -> None:
        """Disconnected: every lookup in flight fails now rather than at its deadline."""
        self._offline.clear()
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            for callback in entry.callbacks:
                callback(None)

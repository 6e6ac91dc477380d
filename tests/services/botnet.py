"""The bot on the services network: its three ways of learning accounts, and talking to it.

The bot learns who is speaking from, in order of preference, the ``account`` tag on each line,
the accounts it tracked from ``extended-join``/``account-notify``, or a WHOIS (330) before it
acts. Each account test runs in all three ways, chosen by the capabilities the bot requests
(``[irc] caps``): :data:`MODES`. A test module parametrises one module-scoped bot fixture over
them, so a mode costs one bot start (one InspIRCd tick) whatever the number of tests.

Clients are :class:`~tests.support.client.IRCTestClient` s created once per module: each
registration costs a tick, a JOIN or a NICK costs nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ircbot.config import IrcConfig
from ircbot.plugin import Plugin
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient
from tests.support.services import ServicesNetwork

__all__ = [
    "LOGIN_FIRST",
    "MODES",
    "SentLines",
    "ServicesBot",
    "start_bot",
]

_FULL = tuple(IrcConfig().caps)
_FALLBACK = ("account-tag", "extended-join", "account-notify")

#: mode -> the ``[irc] caps`` the bot requests. ``full`` is the default list; ``no-account-tag``
#: leaves the bot to the accounts it tracks; ``whois`` leaves it nothing but WHOIS 330.
MODES: dict[str, tuple[str, ...]] = {
    "full": _FULL,
    "no-account-tag": tuple(c for c in _FULL if c != "account-tag"),
    "whois": tuple(c for c in _FULL if c not in _FALLBACK),
}

#: The dispatcher's answer to a command that needs an account, from someone without one.
LOGIN_FIRST = "Log in to services first (I trust accounts, not nicks), then try again."


class SentLines:
    """Every line the bot writes through its connection (the SASL payload never passes here).

    Installed by wrapping the connection's ``send_raw``, which the transport's queue and its
    negotiation both go through; the list is appended to on the bot's thread and read by the
    test, under a lock.
    """

    def __init__(self, connection: Any) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        original = connection.send_raw

        def send_raw(line: str) -> None:
            with self._lock:
                self._lines.append(line)
            original(line)

        connection.send_raw = send_raw

    def mark(self) -> int:
        """A position to look from (see :meth:`since`)."""
        with self._lock:
            return len(self._lines)

    def since(self, mark: int, command: str | None = None) -> list[str]:
        """Lines sent after ``mark``, only those starting with ``command`` if given."""
        with self._lock:
            lines = self._lines[mark:]
        return [ln for ln in lines if command is None or ln.split(" ", 1)[0] == command]


@dataclass
class ServicesBot:
    """A running bot, what it sent, and where it listens."""

    thread: BotThread
    nick: str
    channel: str
    mode: str
    sent: SentLines
    tmpdir: Path
    options: dict[str, Any] = field(default_factory=dict)

    # -- what the bot says --------------------------------------------------------------------
    def expect(
        self,
        client: IRCTestClient,
        pattern: str | None = None,
        *,
        target: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Wait for the bot to say something matching to ``client`` (to ``target`` if given:
        the client's nick for a private line, the channel)."""
        return client.expect(pattern, timeout, source=self.nick, target=target).text

    def expect_none(self, client: IRCTestClient, pattern: str | None = None) -> None:
        """Assert the bot says nothing matching to ``client`` privately (queued lines count)
        before its answer to a ``!ping`` sent now: it answers in order, so the check ends on
        that answer rather than on a window of time. Its private lines up to the answer are
        consumed."""
        client.say(self.nick, "!ping marker")
        unwanted = re.compile(pattern) if pattern is not None else None
        while (text := self.expect(client, target=client.current_nick)) != "pong marker":
            assert unwanted is None or not unwanted.search(text), (
                f"{client.current_nick}: unexpected line from {self.nick}: {text!r}"
            )

    # -- asking it ----------------------------------------------------------------------------
    def ask(self, client: IRCTestClient, text: str, *, timeout: float = 5.0) -> str:
        """Send ``text`` to the bot privately; return its next private reply to ``client``."""
        client.say(self.nick, text)
        return self.expect(client, target=client.current_nick, timeout=timeout)

    def ask_in_channel(self, client: IRCTestClient, text: str, *, timeout: float = 5.0) -> str:
        """Say ``text`` in the bot's channel; return the bot's answer there, minus ``nick: ``."""
        client.say(self.channel, text)
        prefix = f"{client.current_nick}: "
        reply = self.expect(client, f"^{re.escape(prefix)}", target=self.channel, timeout=timeout)
        return reply[len(prefix) :]

    def stop(self) -> None:
        """Stop the bot (bounded) and remove its database."""
        try:
            self.thread.stop()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def start_bot(
    network: ServicesNetwork,
    *,
    nick: str,
    channel: str,
    mode: str,
    sasl: tuple[str, str] | None = None,
    plugins: Sequence[str] = (),
    extra_plugins: Sequence[Plugin] = (),
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: float = 10.0,
) -> ServicesBot:
    """Start a bot in account mode requesting ``MODES[mode]``, and wait until it has joined.

    ``sasl`` is ``(account, password)``: the password reaches the bot through an environment
    variable named in ``[irc] sasl_password_env``, as in production. ``sections`` are extra
    config sections (``{"livechat": {...}}``) merged over the defaults.
    """
    tmpdir = Path(tempfile.mkdtemp(prefix=f"svcbot-{mode}-"))
    irc: dict[str, Any] = {"nick": nick, "channels": [channel], "caps": list(MODES[mode])}
    env: dict[str, str] = {}
    if sasl is not None:
        irc.update(sasl_username=sasl[0], sasl_password_env="SERVICES_BOT_PASSWORD")
        env["SERVICES_BOT_PASSWORD"] = sasl[1]
    config = bot_config(
        network.host,
        network.port,
        f"sqlite:///{tmpdir}/bot.db",
        irc=irc,
        bot={"identity": "account", "plugins": list(plugins), "user_burst": 1000},
    )
    for name, values in (sections or {}).items():
        config.setdefault(name, {}).update(values)
    thread = BotThread(config, env=env, extra_plugins=extra_plugins)
    sent = SentLines(thread.bot.transport.connection)
    bot = ServicesBot(thread, nick, channel, mode, sent, tmpdir)
    try:
        thread.start(wait_joined=True, timeout=timeout)
    except BaseException:
        thread.stop()
        raise
    return bot

"""Run the bot in-process, on its own thread, against a real server.

Why in-process (beside :mod:`tests.support.botproc`): tests can give the bot a clock they
move (SLA reminders, idle closes), look at its database through its own engine, and see a
fatal error (SASL refused) as the exception it is. Everything still goes over real sockets.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ircbot.bot import Bot
from ircbot.clock import utcnow
from ircbot.config import load_config
from ircbot.loading import installed
from ircbot.plugin import Plugin
from ircbot.storage import transaction
from tests.support.botproc import dump_toml

__all__ = ["BotThread", "ShiftClock", "bot_config"]


class ShiftClock:
    """Real monotonic time (rate limits, timeouts work), wall time a test can move forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return utcnow() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


def bot_config(host: str, port: int, db_url: str, **sections: Mapping[str, Any]) -> dict:
    """A config dict for a test bot: fast timers, no output throttling unless asked."""
    config: dict[str, dict[str, Any]] = {
        "irc": {
            "host": host,
            "port": port,
            "nick": "lcbot",
            "channels": ["#livechat"],
            "flood_burst": 1000,
            "flood_rate": 1000.0,
            "reconnect_min": 0.2,
            "reconnect_max": 1.0,
            "sasl_timeout": 3.0,
        },
        "bot": {"identity": "hostmask", "plugins": [], "log_level": "DEBUG", "whois_timeout": 2.0},
        "database": {"url": db_url},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


class BotThread:
    """A Bot running :meth:`Bot.run` on a daemon thread; :meth:`stop` joins it (bounded)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        clock: Any = None,
        env: Mapping[str, str] | None = None,
        extra_plugins: Sequence[Plugin] = (),
    ):
        """``env`` is the whole environment the config sees (overrides, sasl_password_env);
        ``extra_plugins`` are Plugin objects a test defines, loaded after the configured ones."""
        self.dir = Path(tempfile.mkdtemp(prefix="botthread-"))
        self.path = self.dir / "ircbot.toml"
        self.path.write_text(dump_toml(config))
        found = installed()
        loaded = load_config(self.path, found.schemas(), environ=env or {})
        self.clock = clock or ShiftClock()
        plugins = [*found.enabled(loaded.bot.plugins), *extra_plugins]
        self.bot = Bot(loaded, plugins, clock=self.clock)
        self.error: BaseException | None = None
        self.exit_code: int | None = None
        self._joined = threading.Event()
        self._thread = threading.Thread(target=self._main, name="bot", daemon=True)
        self.bot.transport.reactor.add_global_handler("join", self._on_join, 100)

    def _on_join(self, connection: Any, event: Any) -> None:
        if self.bot.network.is_me(event.source.nick):
            self._joined.set()

    def _main(self) -> None:
        try:
            self.exit_code = self.bot.run()
        except BaseException as exc:  # surfaced to the test by stop()/wait_exit()
            self.error = exc

    def start(self, wait_joined: bool = True, timeout: float = 10) -> BotThread:
        self._thread.start()
        if wait_joined:
            self.wait_joined(timeout)
        return self

    def wait_joined(self, timeout: float = 10) -> None:
        """Wait for the bot's next JOIN of a channel (the first, or after a reconnect)."""
        if not self._joined.wait(timeout):
            raise AssertionError(f"bot did not join within {timeout}s (error: {self.error!r})")
        self._joined.clear()

    def query(self, fn: Callable[[Session], Any]) -> Any:
        """Read the bot's database on its own thread, once its current turn is over."""

        def read() -> Any:
            with transaction(self.bot.session_factory) as session:
                return fn(session)

        return self.call(read)

    def call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run ``fn`` on the bot's thread and return its result."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def wrapper() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        self.bot.call_soon(wrapper)
        if not done.wait(timeout):
            raise AssertionError(f"bot thread did not run the call within {timeout}s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def run_jobs(self, timeout: float = 10) -> None:
        """Run every plugin job once now, on the bot's thread, through the plugin runner:
        the path the bot's job runner takes when one is due (one transaction, then what it
        wrote is sent and delivered). For a test that moved the wall clock: :class:`ShiftClock`
        leaves the monotonic clock alone, on which the runner itself would find none due."""

        def run_all() -> None:
            for plugin in self.bot.plugins:
                for job in plugin.jobs:
                    self.bot.runner.run_job(job)

        self.call(run_all, timeout)

    def wait_exit(self, timeout: float = 10) -> BaseException | None:
        """Wait for the bot to stop by itself; return the error it stopped with, if any."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"bot still running after {timeout}s")
        return self.error

    def stop(self, timeout: float = 10) -> None:
        if self._thread.is_alive():
            self.bot.stop()
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise AssertionError("bot did not stop")

    def __enter__(self) -> BotThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The bot's one thread: ``select`` on the server socket and a wake-up pipe, then the timers.

Each turn hands readable data to the reactor (which calls the event handlers), runs the
transport's timers (reconnect, keepalive, queued output), expires WHOIS questions and runs the
jobs that are due (on the monotonic clock: :mod:`ircbot.jobs`). It sleeps no longer than the
nearest of those deadlines. Other threads (tests, signal handlers) talk to the loop only
through :meth:`Loop.call_soon`, so no state is shared without the loop's knowledge.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
from collections.abc import Callable
from typing import Any

from ircbot.jobs import JobRunner
from ircbot.transport import Transport

__all__ = ["Loop"]

logger = logging.getLogger(__name__)


class Loop:
    """Runs the connection until :meth:`stop`; ``expire`` is called on every turn."""

    def __init__(self, transport: Transport, jobs: JobRunner, expire: Callable[[], Any]) -> None:
        self.transport = transport
        self.jobs = jobs
        self.expire = expire
        self._calls: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._running = False

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop's thread at its next turn (thread-safe)."""
        self._calls.put(fn)
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
            os.write(self._wake_w, b"x")

    def stop(self) -> None:
        """Ask the loop to QUIT and return (thread-safe, also from a signal handler)."""
        self.call_soon(self._stop_now)

    def _stop_now(self) -> None:
        self._running = False

    def run(self) -> None:
        """Connect and turn until stopped; QUIT on the way out, whatever stopped it."""
        self._running = True
        self.transport.connect()
        try:
            while self._running:
                self.turn()
        finally:
            self.transport.quit("Shutting down")
            os.close(self._wake_r)
            os.close(self._wake_w)

    def turn(self) -> None:
        reactor = self.transport.reactor
        sockets = reactor.sockets
        timeout = min(self.transport.next_deadline(), self.jobs.wait())
        readable, _, _ = select.select([*sockets, self._wake_r], [], [], timeout)
        if self._wake_r in readable:
            readable.remove(self._wake_r)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
            while not self._calls.empty():
                self._calls.get_nowait()()
        if readable:
            reactor.process_data(readable)
        reactor.process_timeout()
        self.transport.tick()
        self.expire()
        self.jobs.run_due()

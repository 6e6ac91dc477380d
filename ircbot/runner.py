"""Plugin code that runs outside a command: start handlers, periodic jobs, ``seen`` handlers.

Each run is one unit of work with a :class:`~ircbot.context.JobContext`: one transaction,
committed whole or rolled back whole; what it wrote to say goes out only once committed (the
dispatcher's :meth:`~ircbot.dispatch.Dispatcher.flush`) and the durable messages it wrote are
handed to the delivery. An error is logged and the bot carries on; a busy database is a
warning, since the next run or sighting does the work again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ircbot import storage
from ircbot.clock import Clock
from ircbot.context import JobContext, NetworkView, Outgoing
from ircbot.outbound import OutOfBand
from ircbot.plugin import Job, Plugin

__all__ = ["PluginRunner"]

logger = logging.getLogger(__name__)


class PluginRunner:
    """Runs the plugins' jobs and event handlers, each in a transaction of its own."""

    def __init__(
        self,
        *,
        session_factory: Any,
        plugin_configs: Mapping[str, Any],
        clock: Clock,
        view: NetworkView,
        prefix: str,
        out_of_band: OutOfBand,
        flush: Callable[[list[Outgoing]], Any],
        notified: Callable[[Iterable[str]], Any],
    ) -> None:
        self.session_factory = session_factory
        self.plugin_configs = plugin_configs
        self.clock = clock
        self.view = view
        self.prefix = prefix
        self.out_of_band = out_of_band
        self.flush = flush
        self.notified = notified
        self._memory: dict[str, dict[str, Any]] = {}  # each plugin's JobContext.memory

    def context(self, plugin: str) -> JobContext:
        return JobContext(
            session_factory=self.session_factory,
            config=self.plugin_configs.get(plugin),
            clock=self.clock,
            network=self.view,
            prefix=self.prefix,
            out_of_band=self.out_of_band,
            memory=self._memory.setdefault(plugin, {}),
            write=True,  # jobs and event handlers are there to write: the lock first
        )

    def start(self, plugins: Iterable[Plugin]) -> None:
        """Run the ``start`` handlers; one that fails stops the bot before it connects."""
        for plugin in plugins:
            for handler in plugin.event_handlers.get("start", []):
                ctx = self.context(plugin.name)
                try:
                    handler(ctx)
                    ctx.finish(commit=True)
                except Exception:
                    ctx.finish(commit=False)
                    raise

    def run_job(self, job: Job) -> None:
        """One run of a periodic job, in its own transaction; errors are logged, not fatal."""
        self.run(job.plugin, f"job {job.plugin}.{job.name}", job.handler)

    def run(self, plugin: str, what: str, fn: Callable[[JobContext], Any]) -> None:
        """Run ``fn`` in one transaction; send and deliver what it wrote once committed."""
        ctx = self.context(plugin)
        try:
            fn(ctx)
            ctx.finish(commit=True)
        except Exception as exc:
            ctx.finish(commit=False)
            if storage.is_busy(exc):  # rolled back whole; the next run or sighting does it
                logger.warning("%s: the database is busy, nothing done", what)
            else:
                logger.exception("%s failed", what)
            return
        self.flush(ctx.outgoing)
        if ctx.notified:
            self.notified(ctx.notified)

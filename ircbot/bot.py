"""The bot: the composition root that builds its pieces, in dependency order, and runs them.

Each piece gets what it needs when it is built, and nothing is wired into it later:

* the network state (:mod:`ircbot.network`) owns the set of enabled capabilities and the
  nick folding; the transport (:mod:`ircbot.transport`) is given both (it fills the one,
  folds with the other);
* the identity policy, the WHOIS resolver, the throttled WHOX refresh (:mod:`ircbot.whox`),
  the delivery of durable messages and the dispatcher of commands read that state and write
  through the transport;
* the plugin runner (:mod:`ircbot.runner`) runs jobs and event handlers in transactions of
  their own; the IRC event handlers (:mod:`ircbot.events`) feed the state, the resolver, the
  delivery and the plugins' ``seen`` handlers;
* the job runner (:mod:`ircbot.jobs`) and the loop (:mod:`ircbot.loop`) run it all on one
  thread.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from ircbot import outbound, outbox, storage
from ircbot.clock import Clock, SystemClock
from ircbot.config import Config
from ircbot.context import LiveNetworkView
from ircbot.courier import HOLD_ENV, Courier
from ircbot.delivery import Delivery
from ircbot.dispatch import Dispatcher, RateLimiter
from ircbot.events import IrcEvents
from ircbot.identity_policy import make_policy
from ircbot.jobs import JobRunner
from ircbot.loop import Loop
from ircbot.mailer import Mailer, SmtpTarget
from ircbot.network import NetworkState
from ircbot.outbound import OutOfBand
from ircbot.outqueue import Lane
from ircbot.plugin import Plugin
from ircbot.resolver import Resolver
from ircbot.runner import PluginRunner
from ircbot.transport import Transport
from ircbot.webhook import WebhookPoster
from ircbot.whox import AccountRefresh

__all__ = ["Bot"]

logger = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0  # seconds between outbox prunes; the first at start


def identity_masks(config: Config, plugins: list[Plugin]) -> list[str]:
    """The ``nick!user@host`` masks that name people, from each plugin's own config."""
    return [
        mask
        for p in plugins
        if p.identity_masks is not None
        for mask in p.identity_masks(config.plugins.get(p.name))
    ]


def make_courier(config: Config, session_factory: Any, clock: Clock) -> Courier:
    """The sender of mail and webhook posts ``[notify]`` asks for (it sends nothing, and
    starts no thread, when neither URL is set). Secrets are read here, at start."""
    notify = config.notify
    mailer = poster = None
    if notify.smtp_url:
        mailer = Mailer(
            SmtpTarget.from_url(notify.smtp_url),
            password=config.smtp_password(),
            timeout=notify.timeout,
            verify=notify.smtp_tls_verify,
        )
    if notify.webhook_url:
        poster = WebhookPoster(
            notify.webhook_url, config.webhook_secret() or "", timeout=notify.timeout
        )
    environ = os.environ if config.environ is None else config.environ
    return Courier(
        session_factory,
        clock,
        mailer=mailer,
        mail_from=notify.mail_from,
        poster=poster,
        retry_min=notify.retry_min,
        retry_max=notify.retry_max,
        hold_after_send=environ.get(HOLD_ENV) == "1",
    )


class Bot:
    """One bot on one network. Build it, then :meth:`run` it (blocks until :meth:`stop`)."""

    def __init__(
        self,
        config: Config,
        plugins: list[Plugin],
        *,
        clock: Clock | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.clock = clock = clock or SystemClock()
        self.engine = engine or storage.make_engine(
            config.database.url,
            busy_timeout=config.database.busy_timeout,
            lock_timeout=config.database.lock_timeout,
            statement_timeout=config.database.statement_timeout,
        )
        self.session_factory = storage.make_session_factory(self.engine)
        self.courier = make_courier(config, self.session_factory, clock)
        self.out_of_band = OutOfBand(
            mail=self.courier.mailer is not None,
            webhook=self.courier.poster is not None,
            wake=self.courier.wake,
        )
        self.network = NetworkState(config.irc.channels)
        self.transport = Transport(
            config.irc,
            sasl_password=config.sasl_password() if config.irc.sasl_username else None,
            clock=clock.monotonic,
            reply_backlog=config.bot.reply_backlog,
            fold=self.network.fold,
            caps=self.network.caps,
        )
        self.policy = make_policy(
            config.bot.identity, self.network, identity_masks(config, plugins)
        )
        self.view = LiveNetworkView(self.policy)
        self.resolver = Resolver(
            self.network, self.transport.send, clock.monotonic, config.bot.whois_timeout
        )
        refresh = AccountRefresh(
            network=self.network,
            policy=self.policy,
            send=self.transport.send,
            has_whox=self.transport.has_whox,
            clock=clock.monotonic,
            every=config.bot.away_poll,
        )
        self.delivery = Delivery(
            self.session_factory,
            clock,
            self.policy,
            self.resolver,
            functools.partial(self.transport.say, lane=Lane.PRIORITY),
            [h for p in plugins for h in p.event_handlers.get("delivered", [])],
            refresh=refresh,
        )
        self.dispatcher = Dispatcher(
            plugins,
            plugin_configs=config.plugins,
            prefix=config.bot.prefix,
            policy=self.policy,
            resolver=self.resolver,
            view=self.view,
            session_factory=self.session_factory,
            clock=clock,
            limiter=RateLimiter(config.bot.user_burst, config.bot.user_rate, clock.monotonic),
            say=self.transport.say,
            notified=self.delivery.notified,
            out_of_band=self.out_of_band,
        )
        self.runner = PluginRunner(
            session_factory=self.session_factory,
            plugin_configs=config.plugins,
            clock=clock,
            view=self.view,
            prefix=config.bot.prefix,
            out_of_band=self.out_of_band,
            flush=self.dispatcher.flush,
            notified=self.delivery.notified,
        )
        self.events = IrcEvents(
            self.transport.reactor,
            channels=config.irc.channels,
            network=self.network,
            policy=self.policy,
            resolver=self.resolver,
            delivery=self.delivery,
            on_message=self.dispatcher.on_message,
            send=self.transport.send,
            seen_handlers=[(p.name, h) for p in plugins for h in p.event_handlers.get("seen", [])],
            run=self.runner.run,
        )
        self.jobs = JobRunner(clock.monotonic)
        self.jobs.add("delivery sweep", config.bot.away_poll, self.delivery.sweep, first=0)
        self.jobs.add("outbox prune", PRUNE_EVERY, self._prune_outbox, first=0)
        self.loop = Loop(self.transport, self.jobs, expire=self.resolver.expire)
        self.exit_code = 0

    def _prune_outbox(self) -> int:
        """Delete delivered and cancelled outbox rows past ``[bot] outbox_retention_days``,
        and the out-of-band queue's sent, failed and cancelled rows."""
        retention = dt.timedelta(days=self.config.bot.outbox_retention_days)
        return outbox.prune_expired(
            self.session_factory,
            before=self.clock.now() - retention,
            queries=(outbox.prune, outbound.prune),
        )

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the bot's thread at the next turn of the loop (thread-safe)."""
        self.loop.call_soon(fn)

    def stop(self, exit_code: int = 0) -> None:
        """Ask the loop to QUIT and return (thread-safe, also from a signal handler)."""
        self.exit_code = exit_code
        self.loop.stop()

    def prepare(self) -> None:
        """Schema to head, plugins started, their jobs scheduled, outbox loaded: everything
        before connecting."""
        storage.migrate(self.engine, [p.migrations for p in self.plugins if p.migrations])
        self.runner.start(self.plugins)
        for plugin in self.plugins:
            for job in plugin.jobs:
                self.jobs.add(
                    f"{job.plugin}.{job.name}",
                    job.every,
                    functools.partial(self.runner.run_job, job),
                )
        self.delivery.load()

    def run(self) -> int:
        """Connect and serve until stopped; returns the exit code."""
        self.prepare()
        self.courier.start()
        try:
            self.loop.run()
        finally:
            self.courier.stop()
            self.engine.dispose()
        return self.exit_code

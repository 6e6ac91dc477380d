"""The bot: wires the transport, the network state, the dispatcher, the outbox and the jobs.

Everything runs on one thread, in :meth:`Bot.run`'s loop: ``select`` on the server socket and
a wake-up pipe, hand readable data to the reactor, run timers and due jobs (on the monotonic
clock: :mod:`ircbot.jobs`), drain the output queue. Other threads (tests, signal handlers)
talk to the loop only through :meth:`Bot.call_soon`, so no state is shared without the loop's
knowledge.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import queue
import select
from collections.abc import Callable
from typing import Any

from irc.client import Event
from sqlalchemy.engine import Engine

from ircbot import outbound, outbox, storage
from ircbot.clock import Clock, SystemClock
from ircbot.config import Config
from ircbot.context import JobContext, LiveNetworkView
from ircbot.courier import HOLD_ENV, Courier
from ircbot.delivery import Delivery
from ircbot.dispatch import Dispatcher, RateLimiter
from ircbot.identity import Identity
from ircbot.identity_policy import make_policy
from ircbot.jobs import JobRunner, clamp
from ircbot.mailer import Mailer, SmtpTarget
from ircbot.network import NetworkState
from ircbot.outbound import OutOfBand
from ircbot.outqueue import Lane
from ircbot.plugin import Job, Plugin
from ircbot.resolver import Resolver
from ircbot.transport import Transport
from ircbot.webhook import WebhookPoster

__all__ = ["Bot"]

logger = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0  # seconds between outbox prunes; the first at start
PRUNE_BATCH = 500  # rows per delete transaction
PRUNE_BATCHES = 20  # transactions per prune run


def identity_masks(config: Config, plugins: list[Plugin]) -> list[str]:
    """The ``nick!user@host`` masks that name people, from each plugin's own config."""
    return [
        mask
        for p in plugins
        if p.identity_masks is not None
        for mask in p.identity_masks(config.plugins.get(p.name))
    ]


def _seen_call(
    handler: Callable[..., Any], ctx: JobContext, *, identity: Identity, nick: str
) -> None:
    handler(ctx, identity, nick)


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


def _tags(event: Event) -> dict[str, str | None]:
    return {t["key"]: t["value"] for t in event.tags} if event.tags else {}


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
        self.clock = clock or SystemClock()
        self.engine = engine or storage.make_engine(
            config.database.url,
            busy_timeout=config.database.busy_timeout,
            lock_timeout=config.database.lock_timeout,
            statement_timeout=config.database.statement_timeout,
        )
        self.session_factory = storage.make_session_factory(self.engine)
        self.courier = make_courier(config, self.session_factory, self.clock)
        self.out_of_band = OutOfBand(
            mail=self.courier.mailer is not None,
            webhook=self.courier.poster is not None,
            wake=self.courier.wake,
        )
        self.network = NetworkState(config.irc.channels)
        self.transport = Transport(
            config.irc,
            sasl_password=config.sasl_password() if config.irc.sasl_username else None,
            clock=self.clock.monotonic,
            reply_backlog=config.bot.reply_backlog,
        )
        self.transport.fold = self.network.fold
        self.network.caps = self.transport.caps
        self.policy = make_policy(
            config.bot.identity, self.network, identity_masks(config, plugins)
        )
        self.view = LiveNetworkView(self.policy)
        self.resolver = Resolver(
            self.network, self.transport.send, self.clock.monotonic, config.bot.whois_timeout
        )
        self.delivery = Delivery(
            self.session_factory,
            self.clock,
            self.policy,
            self.resolver,
            functools.partial(self.transport.say, lane=Lane.PRIORITY),
            [h for p in plugins for h in p.event_handlers.get("delivered", [])],
            refresh=self._refresh_accounts,
        )
        self.dispatcher = Dispatcher(
            plugins,
            plugin_configs=config.plugins,
            prefix=config.bot.prefix,
            policy=self.policy,
            resolver=self.resolver,
            view=self.view,
            session_factory=self.session_factory,
            clock=self.clock,
            limiter=RateLimiter(config.bot.user_burst, config.bot.user_rate, self.clock.monotonic),
            say=self.transport.say,
            notified=self.delivery.notified,
            out_of_band=self.out_of_band,
        )
        self.exit_code = 0
        self._memory: dict[str, dict[str, Any]] = {}  # each plugin's JobContext.memory
        self._seen_handlers = [
            (p.name, h) for p in plugins for h in p.event_handlers.get("seen", [])
        ]
        self._calls: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._running = False
        self.jobs = JobRunner(self.clock.monotonic)
        self.jobs.add("delivery sweep", config.bot.away_poll, self.delivery.sweep, first=0)
        self.jobs.add("outbox prune", PRUNE_EVERY, self.prune_outbox, first=0)
        self._next_refresh = 0.0
        self._install_handlers()

    # -- plumbing IRC events into the state --------------------------------------------
    def _install_handlers(self) -> None:
        add = self.transport.reactor.add_global_handler
        add("pubmsg", self._on_pubmsg, 0)
        add("privmsg", self._on_privmsg, 0)
        add("featurelist", self._on_isupport, 0)
        add("welcome", self._on_welcome, 0)
        add("join", self._on_join, 0)
        add("part", self._on_part, 0)
        add("kick", self._on_kick, 0)
        add("quit", self._on_quit, 0)
        add("nick", self._on_nick, 0)
        add("account", self._on_account, 0)
        add("away", self._on_away, 0)
        add("chghost", self._on_chghost, 0)
        add("namreply", self._on_names, 0)
        add("whoreply", self._on_whoreply, 0)
        add("whospcrpl", self._on_whox, 0)
        add("whoisuser", lambda c, e: self.resolver.on_whois_user(*e.arguments[:3]), 0)
        add("whoisaccount", lambda c, e: self.resolver.on_whois_account(*e.arguments[:2]), 0)
        add("nosuchnick", lambda c, e: self.resolver.on_no_such_nick(e.arguments[0]), 0)
        add("endofwhois", lambda c, e: self.resolver.on_end_of_whois(e.arguments[0]), 0)
        self.transport.on_registered.append(self._joined_server)
        self.transport.on_disconnected.append(self._lost_server)

    def _on_pubmsg(self, connection: Any, event: Event) -> None:
        src = event.source
        self.dispatcher.on_message(
            src.nick, src.user, src.host, event.target, event.arguments[0], _tags(event)
        )

    def _on_privmsg(self, connection: Any, event: Event) -> None:
        src = event.source
        if not src.user:  # from a server, not a person
            return
        self.dispatcher.on_message(
            src.nick, src.user, src.host, None, event.arguments[0], _tags(event)
        )

    def _on_isupport(self, connection: Any, event: Event) -> None:
        # Not every 005 line carries CASEMAPPING, and jaraco keeps only the tokens it saw.
        name = getattr(connection.features, "casemapping", None)
        if name is not None:
            self.network.set_casemapping(name)

    def _on_welcome(self, connection: Any, event: Event) -> None:
        self.network.own_nick = connection.get_nickname()

    def _joined_server(self) -> None:
        self.network.caps = self.transport.caps
        for channel in self.config.irc.channels:
            self.transport.send(f"JOIN {channel}")

    def _lost_server(self) -> None:
        self.network.reset()
        self.resolver.reset()
        self.delivery.reset()

    def _on_join(self, connection: Any, event: Event) -> None:
        src = event.source
        account = (
            event.arguments[0] if "extended-join" in self.network.caps and event.arguments else None
        )
        self.network.on_join(src.nick, src.user, src.host, event.target, account)
        if self.network.is_me(src.nick):
            whox = getattr(connection.features, "whox", None) is not None
            self.transport.send(f"WHO {event.target} %tnuhaf,42" if whox else f"WHO {event.target}")
            logger.info("joined %s", event.target)
        else:
            self._seen(src.nick, fresh=account is not None)
            self.delivery.on_seen(src.nick)

    def _on_part(self, connection: Any, event: Event) -> None:
        self.network.on_part(event.source.nick, event.target)

    def _on_kick(self, connection: Any, event: Event) -> None:
        kicked = event.arguments[0]
        self.network.on_kick(event.target, kicked)
        if self.network.is_me(kicked):
            logger.warning("kicked from %s; rejoining", event.target)
            self.transport.send(f"JOIN {event.target}")

    def _on_quit(self, connection: Any, event: Event) -> None:
        self.resolver.cancel(event.source.nick)
        self.network.on_quit(event.source.nick)

    def _on_nick(self, connection: Any, event: Event) -> None:
        self.resolver.cancel(event.source.nick)
        self.resolver.cancel(event.target)
        self.network.on_nick(event.source.nick, event.target)
        self._seen(event.target)
        self.delivery.on_seen(event.target)

    def _on_account(self, connection: Any, event: Event) -> None:
        self.network.on_account(event.source.nick, event.target)
        self._seen(event.source.nick)
        self.delivery.on_seen(event.source.nick)

    def _on_away(self, connection: Any, event: Event) -> None:
        nick = event.source.nick if event.source and event.source.user else None
        if nick is None:  # 301 RPL_AWAY: "<me> <nick> :message"
            self.resolver.on_whois_away(event.arguments[0])
            return
        back = not event.target and not event.arguments
        self.network.on_away(nick, not back)
        if back:
            self.delivery.on_seen(nick)

    def _on_chghost(self, connection: Any, event: Event) -> None:
        self.network.on_chghost(event.source.nick, event.target, event.arguments[0])
        self._seen(event.source.nick)

    def _on_names(self, connection: Any, event: Event) -> None:
        self.network.on_names(event.arguments[1], event.arguments[2])

    def _on_whoreply(self, connection: Any, event: Event) -> None:
        channel, user, host, _server, nick, flags = event.arguments[:6]
        self.network.on_who(channel, nick, user, host, flags, None)
        self._seen(nick)
        self.delivery.on_seen(nick)

    def _on_whox(self, connection: Any, event: Event) -> None:
        if len(event.arguments) < 6 or event.arguments[0] != "42":
            return
        _token, user, host, nick, flags, account = event.arguments[:6]
        self.network.on_who("", nick, user, host, flags, account)
        self._seen(nick, fresh=True)
        self.delivery.on_seen(nick, fresh=True)

    def _seen(self, nick: str, *, fresh: bool = False) -> None:
        """Tell the plugins' ``seen`` handlers who holds ``nick``, now that the bot knows.

        Only for someone in a shared channel whose identity is certain, or ``fresh``: told by
        the server on this very line (extended-join, WHOX). Each handler runs in a transaction
        of its own, opened only if it touches the database: most lines change nothing.
        """
        if not self._seen_handlers or self.network.is_me(nick):
            return
        user = self.network.get(nick)
        if user is None or not user.channels or not (fresh or self.policy.certain(user)):
            return
        identity = self.policy.identity_of(user)
        if identity is None:
            return
        for plugin, handler in self._seen_handlers:
            self._run_in_context(
                plugin,
                f"seen {nick}",
                functools.partial(_seen_call, handler, identity=identity, nick=nick),
            )

    def _refresh_accounts(self) -> None:
        """Ask the server (WHOX) for the accounts of everyone in the joined channels.

        The delivery's way to find a recipient the server never told us about (no
        ``extended-join``/``account-notify``); one line per channel, at most once per
        ``[bot] away_poll``. Without WHOX a plain WHO tells no accounts: nothing to ask.
        """
        now = self.clock.monotonic()
        features = self.transport.connection.features
        due = clamp(self._next_refresh, self.config.bot.away_poll, now)  # a step back: not stuck
        if now < due or getattr(features, "whox", None) is None:
            return
        if all(self.policy.certain(u) for u in self.network.users.values() if u.channels):
            return  # everyone present is known: the person waited for is not here
        self._next_refresh = now + self.config.bot.away_poll
        for channel in sorted(self.network.joined):
            self.transport.send(f"WHO {channel} %tnuhaf,42")

    # -- jobs -----------------------------------------------------------------------------
    def job_context(self, plugin: str) -> JobContext:
        return JobContext(
            session_factory=self.session_factory,
            config=self.config.plugins.get(plugin),
            clock=self.clock,
            network=self.view,
            prefix=self.config.bot.prefix,
            out_of_band=self.out_of_band,
            memory=self._memory.setdefault(plugin, {}),
            write=True,  # jobs and event handlers are there to write: the lock first
        )

    def run_job(self, job: Job) -> None:
        """One run of a periodic job, in its own transaction; errors are logged, not fatal."""
        self._run_in_context(job.plugin, f"job {job.plugin}.{job.name}", job.handler)

    def _run_in_context(self, plugin: str, what: str, fn: Callable[[JobContext], Any]) -> None:
        """Run ``fn`` in one transaction; send and deliver what it wrote once committed."""
        ctx = self.job_context(plugin)
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
        self.dispatcher.flush(ctx.outgoing)
        if ctx.notified:
            self.delivery.notified(ctx.notified)

    def _start_plugins(self) -> None:
        for plugin in self.plugins:
            for handler in plugin.event_handlers.get("start", []):
                ctx = self.job_context(plugin.name)
                try:
                    handler(ctx)
                    ctx.finish(commit=True)
                except Exception:
                    ctx.finish(commit=False)
                    raise
            for job in plugin.jobs:
                self.jobs.add(
                    f"{job.plugin}.{job.name}", job.every, functools.partial(self.run_job, job)
                )

    def prune_outbox(self) -> int:
        """Delete delivered and cancelled outbox rows past ``[bot] outbox_retention_days``,
        and the out-of-band queue's sent, failed and cancelled rows.

        Batches of :data:`PRUNE_BATCH` rows, each its own short write transaction, at most
        :data:`PRUNE_BATCHES` a run: a first run on a large backlog is spread over several
        hours instead of holding the bot (and the write lock) for long. Busy: next run.
        """
        cutoff = self.clock.now() - dt.timedelta(days=self.config.bot.outbox_retention_days)
        total = 0
        for prune in (outbox.prune, outbound.prune):
            total += self._prune(prune, cutoff)
        if total:
            logger.info("pruned %d outbox messages delivered or cancelled before %s", total, cutoff)
        return total

    def _prune(self, prune: Callable[..., int], cutoff: dt.datetime) -> int:
        total = 0
        for _ in range(PRUNE_BATCHES):
            try:
                with storage.transaction(self.session_factory) as session:
                    deleted = prune(session, before=cutoff, limit=PRUNE_BATCH)
            except Exception as exc:
                if not storage.is_busy(exc):
                    logger.exception("pruning the outbox failed")
                else:
                    logger.warning("pruning the outbox: the database is busy; next time")
                break
            total += deleted
            if deleted < PRUNE_BATCH:
                break
        return total

    # -- the loop -------------------------------------------------------------------------
    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the bot's thread at the next turn of the loop (thread-safe)."""
        self._calls.put(fn)
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
            os.write(self._wake_w, b"x")

    def stop(self, exit_code: int = 0) -> None:
        """Ask the loop to QUIT and return (thread-safe, also from a signal handler)."""
        self.exit_code = exit_code
        self.call_soon(self._stop_now)

    def _stop_now(self) -> None:
        self._running = False

    def prepare(self) -> None:
        """Schema to head, plugins started, outbox loaded: everything before connecting."""
        storage.migrate(self.engine, [p.migrations for p in self.plugins if p.migrations])
        self._start_plugins()
        self.delivery.load()

    def run(self) -> int:
        """Connect and serve until stopped; returns the exit code."""
        self.prepare()
        self._running = True
        self.courier.start()
        self.transport.connect()
        try:
            while self._running:
                self._turn()
        finally:
            self.courier.stop()
            self.transport.quit("Shutting down")
            self.engine.dispose()
            os.close(self._wake_r)
            os.close(self._wake_w)
        return self.exit_code

    def _turn(self) -> None:
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
        self.resolver.expire()
        self.jobs.run_due()

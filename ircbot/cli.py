"""The ``ircbot`` command: run the bot, write a starter config, check it, migrate the database.

``-c FILE`` belongs to the group and comes before the command (``ircbot -c bot.toml run``).
Plugins add their own commands (``ircbot trainee list`` ...) through ``Plugin.cli``; they
reach the configuration and the database through the :class:`App` in ``click``'s ``ctx.obj``.
Configuration problems print one line naming the file and key and exit with code 2; a
database that cannot be opened, one line naming it and exit code 1.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ircbot.clock import Clock, SystemClock
from ircbot.config import (
    Config,
    ConfigError,
    load_config,
    render_config,
    starter_config,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ircbot.loading import Installed
    from ircbot.plugin import Plugin

__all__ = ["App", "main"]

logger = logging.getLogger(__name__)
DEFAULT_CONFIG = "ircbot.toml"
CONFIG_ENVVAR = "IRCBOT_CONFIG"  # for a service manager: the unit sets it once for every command
DISTRIBUTION = "livechat-bot"  # the installed distribution whose version --version prints


class App:
    """What every subcommand needs, loaded on first use so ``ircbot init`` needs no file."""

    def __init__(self, config_path: str, clock: Clock | None = None) -> None:
        self.config_path = config_path
        self.clock: Clock = clock or SystemClock()
        self._config: Config | None = None
        self._session_factory: Any = None

    @functools.cached_property
    def installed(self) -> Installed:
        """Every installed plugin, loaded once (their config sections are known before the
        config file is read)."""
        from ircbot.loading import installed

        return installed()

    def plugin_schemas(self) -> dict[str, type]:
        return self.installed.schemas()

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, self.plugin_schemas())
        return self._config

    def plugins(self) -> list[Plugin]:
        try:
            return self.installed.enabled(self.config.bot.plugins)
        except LookupError as exc:
            raise ConfigError(f"{self.config.source}: [bot] plugins: {exc}") from None

    def engine(self) -> Any:
        """The migrated database, with the shell's lock waits: ``[database] cli_timeout``
        (a person at a terminal can wait longer than the bot's users), said on stderr."""
        from ircbot import storage

        db = self.config.database
        engine = storage.make_engine(
            db.url,
            busy_timeout=db.cli_timeout,
            lock_timeout=db.cli_timeout,
            statement_timeout=max(db.statement_timeout, db.cli_timeout),
            on_lock_wait=_say_waiting,
        )
        storage.migrate(engine, [p.migrations for p in self.plugins() if p.migrations])
        return engine

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work on the migrated database; ``write=False``: a read, no lock.

        Load everything first and print after the block: a slow pipe or pager must never
        hold the transaction (on SQLite, the write lock the bot is waiting for).
        """
        from ircbot import storage

        if self._session_factory is None:
            self._session_factory = storage.make_session_factory(self.engine())
        unit = storage.transaction if write else storage.reading
        try:
            with unit(self._session_factory) as session:
                yield session
        except Exception as exc:
            if storage.is_busy(exc) and not isinstance(exc, storage.DatabaseBusy):
                raise storage.DatabaseBusy(str(exc).partition("\n")[0]) from exc
            raise


def _say_waiting() -> None:
    click.echo("waiting for the database lock...", err=True)


class _PluginGroup(click.Group):
    """A group whose commands include those of every installed plugin."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        from ircbot.loading import installed

        commands = {}
        for plugin in installed().plugins.values():
            for command in plugin.cli_commands:
                commands[command.name] = command
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands().get(name)

    def invoke(self, ctx: click.Context) -> Any:
        from ircbot.storage import DatabaseBusy, DatabaseUnavailable

        try:
            return super().invoke(ctx)
        except DatabaseBusy as exc:
            # Another program held a lock past [database] cli_timeout; all rolled back.
            click.echo(
                f"error: the database is busy ({exc}); nothing was changed, try again", err=True
            )
            ctx.exit(1)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except DatabaseUnavailable as exc:
            # 1, not the 2 of a bad config: a database that is down or not mounted yet may be
            # back in a moment, and a supervisor should try again.
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_PluginGroup)
@click.version_option(package_name=DISTRIBUTION, prog_name="ircbot")
@click.option(
    "-c",
    "--config",
    "config_path",
    default=DEFAULT_CONFIG,
    envvar=CONFIG_ENVVAR,
    show_default=True,
    show_envvar=True,
    help="The configuration file.",
)
@click.pass_context
def main(ctx: click.Context, config_path: str) -> None:
    """livechat-bot: runs a support team's trainee approvals on IRC."""
    ctx.obj = App(config_path)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "DEBUG":  # Alembic lists each of its autogenerate plugins at INFO on every upgrade
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@main.command()
@click.pass_obj
def run(app: App) -> None:
    """Connect and serve in the foreground until SIGTERM or SIGINT."""
    from ircbot.bot import Bot
    from ircbot.transport import FatalError

    config = app.config
    _setup_logging(config.bot.log_level)
    for warning in config.warnings:
        logger.warning("%s", warning)
    bot = Bot(config, app.plugins(), clock=app.clock)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: bot.stop(0))
    try:
        code = bot.run()
    except FatalError:
        sys.exit(1)  # its reason is already logged, in one line, where it was raised
    logger.info("stopped")
    sys.exit(code)


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(app: App, force: bool) -> None:
    """Write a commented starter configuration (to -c's path)."""
    path = Path(app.config_path)
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; use --force to overwrite it")
    try:
        path.write_text(starter_config(app.plugin_schemas()), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"wrote {path}; check it with: ircbot -c {path} config check")


@main.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.pass_obj
def config_check(app: App) -> None:
    """Validate the configuration and print it as the bot sees it, secrets masked."""
    cfg = app.config
    app.plugins()
    if cfg.irc.sasl_username:
        cfg.sasl_password()  # the secret must be readable, though it is never printed
    if cfg.notify.smtp_url:
        cfg.smtp_password()
    if cfg.notify.webhook_url:
        cfg.webhook_secret()
    click.echo(render_config(cfg, mask=True), nl=False)
    for warning in cfg.warnings:
        click.echo(f"# warning: {warning}", err=True)
    click.echo(f"# {cfg.source}: OK", err=True)


@config.command("reference")
@click.pass_obj
def config_reference(app: App) -> None:
    """Print every key of every installed section as a Markdown table (the README's)."""
    from ircbot.config import CORE_SECTIONS, reference_table

    click.echo(reference_table({**CORE_SECTIONS, **app.plugin_schemas()}))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: App) -> None:
    """Bring the database schema to the newest migration."""
    app.engine().dispose()
    click.echo("database is at the newest schema")

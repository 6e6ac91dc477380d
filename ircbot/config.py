"""Configuration: one TOML file plus ``IRCBOT_<SECTION>__<KEY>`` overrides, checked at start.

Each section is a frozen dataclass whose fields carry a one-line description in their metadata
(see :func:`option`). That one declaration gives the typed object the code reads, the
validation (unknown keys, wrong types, bad values), the starter file ``ircbot init`` writes and
the reference table in the README, so the four cannot drift apart. Plugins declare their own
section the same way.

Errors are :class:`ConfigError` with one line that names the file (or environment variable)
and the key, because the person reading it is setting up a bot, not debugging Python.

A section whose rules span keys or sections (a plugin's masks are only valid in one identity
mode) gives its dataclass a ``check(bot, label)`` method (see :class:`SectionCheck`): it is
called once every section is read, raises ConfigError to refuse, and returns warnings, which
``config check`` prints and ``run`` logs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ircbot.errors import ConfigError

__all__ = [
    "BotConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "IrcConfig",
    "NotifyConfig",
    "SectionCheck",
    "option",
    "parse_section",
    "render_section",
]

ENV_PREFIX = "IRCBOT_"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    secret: bool = False,
) -> Any:
    """Declare a config key: its default, its one-line description and its limits."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "secret": secret}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class IrcConfig:
    """Where to connect and how to behave on the wire."""

    host: str = option("127.0.0.1", "IRC server host name; also the name TLS verifies")
    port: int = option(6667, "IRC server port (6697 is the usual TLS port)", minimum=1)
    tls: bool = option(False, "connect with TLS")
    tls_verify: bool = option(True, "verify the server's TLS certificate and host name")
    nick: str = option("livechat-bot", "the nick the bot wants")
    alt_nicks: list[str] = option([], "nicks to try, in order, while the wanted one is taken")
    username: str = option("livechat", "the user (ident) name")
    realname: str = option("livechat trainee-approval bot", "the real name (gecos)")
    channels: list[str] = option(["#livechat"], "channels to join")
    sasl_username: str = option("", "services account for SASL PLAIN; empty: no SASL")
    sasl_password_env: str = option("", "name of the environment variable holding the password")
    sasl_password_file: str = option("", "file holding the SASL password (first line)")
    sasl_required: bool = option(True, "if SASL login fails: true aborts, false continues")
    sasl_timeout: float = option(15.0, "seconds to wait for SASL to finish", minimum=1)
    caps: list[str] = option(
        [
            "sasl",
            "account-tag",
            "account-notify",
            "extended-join",
            "multi-prefix",
            "message-tags",
            "server-time",
            "chghost",
            "away-notify",
        ],
        "IRCv3 capabilities to request when the server offers them",
    )
    flood_burst: int = option(4, "lines the bot may send at once", minimum=1)
    flood_rate: float = option(1.0, "lines per second after the burst", minimum=0.01)
    connect_timeout: float = option(10.0, "seconds to wait for a TCP/TLS connection", minimum=1)
    ping_timeout: float = option(240.0, "seconds of silence before the link is dead", minimum=5)
    reconnect_min: float = option(2.0, "first reconnect delay, seconds", minimum=0.1)
    reconnect_max: float = option(300.0, "longest reconnect delay, seconds", minimum=1)


@dataclass(frozen=True)
class BotConfig:
    """How the bot reads commands and whom it believes."""

    prefix: str = option("!", "command prefix in channels and private messages")
    identity: str = option(
        "account",
        "account: trust services accounts; hostmask: trust nick!user@host masks",
        choices=("account", "hostmask"),
    )
    plugins: list[str] = option(["livechat"], "plugins to enable (entry points ircbot.plugins)")
    log_level: str = option("INFO", "log level on stderr", choices=_LOG_LEVELS)
    user_burst: int = option(5, "commands one person may send at once", minimum=1)
    user_rate: float = option(0.5, "commands per second per person after the burst", minimum=0.01)
    reply_backlog: int = option(
        10, "reply lines that may wait for one person; the rest of an answer is cut", minimum=1
    )
    whois_timeout: float = option(
        5.0, "seconds to wait for a WHOIS's answer, from when it is sent", minimum=0.1
    )
    away_poll: float = option(
        60.0, "seconds between checks on people with messages waiting (arrived, back)", minimum=1
    )
    outbox_retention_days: int = option(
        90,
        "days delivered and cancelled outbox messages are kept (the audit log keeps all)",
        minimum=1,
    )


@dataclass(frozen=True)
class DatabaseConfig:
    """Where state lives."""

    url: str = option(
        "sqlite:///ircbot.db",
        "SQLAlchemy URL; sqlite paths are relative to the working directory",
        secret=True,
    )
    busy_timeout: float = option(
        2.0, "SQLite: seconds the bot waits for another program's write lock", minimum=0.1
    )
    lock_timeout: float = option(
        2.0, "PostgreSQL: seconds a statement waits for a row or table lock", minimum=0.1
    )
    statement_timeout: float = option(
        5.0, "PostgreSQL: seconds any one statement may run", minimum=0.1
    )
    cli_timeout: float = option(
        30.0, "seconds a shell command waits for a lock before giving up", minimum=0.1
    )


@dataclass(frozen=True)
class NotifyConfig:
    """Reaching people outside IRC: mail by SMTP, events posted to a webhook.

    Both are off while their URL is empty. Secrets, as for SASL, come from an environment
    variable or a file, never from the TOML (:meth:`Config.smtp_password`,
    :meth:`Config.webhook_secret`); ``check`` refuses a password written into a URL.
    """

    smtp_url: str = option(
        "",
        "smtp://[user@]host[:port] (STARTTLS used when offered) or smtps://...; empty: no mail",
    )
    mail_from: str = option("", "the From address of the bot's mail")
    smtp_password_env: str = option("", "name of the environment variable holding the password")
    smtp_password_file: str = option("", "file holding the SMTP password (first line)")
    smtp_tls_verify: bool = option(True, "verify the mail server's certificate and host name")
    webhook_url: str = option(
        "", "http(s) URL that gets a signed JSON POST for each event; empty: none", secret=True
    )
    webhook_secret_env: str = option(
        "", "name of the environment variable holding the webhook's HMAC secret"
    )
    webhook_secret_file: str = option("", "file holding the webhook's HMAC secret (first line)")
    timeout: float = option(20.0, "seconds one SMTP or HTTP attempt may take", minimum=1)
    retry_min: float = option(30.0, "first retry delay after a failed send, seconds", minimum=0.1)
    retry_max: float = option(3600.0, "longest retry delay, seconds", minimum=1)

    def check(self, bot: BotConfig, label: Callable[[str], str]) -> list[str]:
        """URLs of a known shape, with no password in them; a From for mail; a webhook's
        secret named (an unsigned post could be forged by anyone who finds the URL)."""
        from urllib.parse import urlsplit

        if self.smtp_url:
            url = urlsplit(self.smtp_url)
            if url.scheme not in ("smtp", "smtps") or not url.hostname:
                raise ConfigError(
                    f"{label('smtp_url')} must be smtp://host[:port] or smtps://host[:port]"
                )
            if url.password is not None:
                raise ConfigError(
                    f"{label('smtp_url')} holds a password: put it in smtp_password_env "
                    "or smtp_password_file instead"
                )
            if "@" not in self.mail_from:
                raise ConfigError(f"{label('mail_from')} must be an address when smtp_url is set")
        if self.webhook_url:
            url = urlsplit(self.webhook_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ConfigError(f"{label('webhook_url')} must be an http:// or https:// URL")
            if not (self.webhook_secret_env or self.webhook_secret_file):
                raise ConfigError(
                    f"{label('webhook_url')} needs a secret to sign with: set "
                    "webhook_secret_env or webhook_secret_file"
                )
        if self.retry_max < self.retry_min:
            raise ConfigError(f"{label('retry_max')} must be at least retry_min")
        return []


@runtime_checkable
class SectionCheck(Protocol):
    """A section that checks itself against the rest of the configuration."""

    def check(self, bot: BotConfig, label: Callable[[str], str]) -> list[str]:
        """Raise ConfigError naming ``label(key)`` to refuse; return warnings (one line each).

        ``label(key)`` is where a key's value came from, the file and section or the
        environment variable, so a message points at what the person has to change.
        """
        ...


_CORE_SECTIONS: dict[str, type] = {
    "irc": IrcConfig,
    "bot": BotConfig,
    "database": DatabaseConfig,
    "notify": NotifyConfig,
}


@dataclass(frozen=True)
class Config:
    """The whole checked configuration, core sections typed, plugin sections by name."""

    irc: IrcConfig
    bot: BotConfig
    database: DatabaseConfig
    plugins: Mapping[str, Any]
    source: str
    # The environment the overrides came from, read again for sasl_password_env (None: os's).
    environ: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    # What the sections' checks found doubtful but allowed, one line each (see SectionCheck).
    warnings: tuple[str, ...] = field(default=(), compare=False)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def sasl_password(self) -> str | None:
        """Read the SASL secret from the environment or its file, never from the TOML."""
        irc = self.irc
        return self._secret("irc", "sasl_password", irc.sasl_password_env, irc.sasl_password_file)

    def smtp_password(self) -> str | None:
        """The SMTP password, from the environment or its file (None: log in without one)."""
        n = self.notify
        return self._secret("notify", "smtp_password", n.smtp_password_env, n.smtp_password_file)

    def webhook_secret(self) -> str | None:
        """The key the webhook's posts are signed with, from the environment or its file."""
        n = self.notify
        return self._secret("notify", "webhook_secret", n.webhook_secret_env, n.webhook_secret_file)

    def _secret(self, section: str, key: str, env_name: str, file_name: str) -> str | None:
        """``{key}_env`` names a variable, ``{key}_file`` a file whose first line it is."""
        if env_name:
            environ = os.environ if self.environ is None else self.environ
            value = environ.get(env_name)
            if value is None:
                raise ConfigError(
                    f"{self.source}: [{section}] {key}_env: environment variable "
                    f"{env_name} is not set"
                )
            return value
        if file_name:
            try:
                return Path(file_name).read_text().splitlines()[0]
            except (OSError, IndexError) as exc:
                reason = getattr(exc, "strerror", None) or "file is empty"
                raise ConfigError(
                    f"{self.source}: [{section}] {key}_file: cannot read {file_name}: {reason}"
                ) from None
        return None


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, "a list of strings"
    )


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` (str, int, float, bool, list[str])."""
    if typing.get_origin(tp) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where} must be {_type_name(tp)}, not {value!r}")


def _from_env_text(tp: Any, text: str, where: str) -> Any:
    """Environment variables are strings: read them as the key's type."""
    if typing.get_origin(tp) is list:
        if text.strip().startswith("["):
            try:
                return tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                raise ConfigError(f"{where} is not a TOML list: {text!r}") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, not {text!r}")
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            raise ConfigError(f"{where} must be {_type_name(tp)}, not {text!r}") from None
    return text


def parse_section(
    schema: type,
    values: Mapping[str, Any],
    where: str,
    labels: Mapping[str, str] | None = None,
) -> Any:
    """Build the frozen ``schema`` dataclass from ``values``, or raise a one-line ConfigError.

    ``labels`` names where a key's value came from when that is not ``where`` (an environment
    variable), so the error points at what the person has to fix.
    """
    hints = typing.get_type_hints(schema)
    known = {f.name: f for f in dataclasses.fields(schema)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    kwargs = {}
    for name, f in known.items():
        if name not in values:
            continue
        label = (labels or {}).get(name) or f"{where} {name}"
        value = _coerce(hints[name], values[name], label)
        meta = f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            choices = ", ".join(map(str, meta["choices"]))
            raise ConfigError(f"{label} must be one of {choices}, not {value!r}")
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise ConfigError(f"{label} must be at least {meta['minimum']}, not {value!r}")
        kwargs[name] = value
    return schema(**kwargs)


def _env_overrides(
    environ: Mapping[str, str], schemas: Mapping[str, type]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """The overriding values by section and key, and the variable each came from."""
    overrides: dict[str, dict[str, Any]] = {}
    labels: dict[str, dict[str, str]] = {}
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        section, sep, key = var[len(ENV_PREFIX) :].lower().partition("__")
        if not sep or section not in schemas:
            continue  # IRCBOT_ variables that are not config overrides (or unknown plugins)
        hints = typing.get_type_hints(schemas[section])
        if key not in hints:
            raise ConfigError(f"environment {var}: unknown key {key!r} in [{section}]")
        overrides.setdefault(section, {})[key] = _from_env_text(
            hints[key], text, f"environment {var}"
        )
        labels.setdefault(section, {})[key] = f"environment {var}"
    return overrides, labels


def _check_database_url(url: str, label: str) -> None:
    """A URL SQLAlchemy cannot parse fails here, as a config error, not later as a traceback.

    The value is never echoed: it may hold a password. A second ``@`` before the path is a
    password (or user name) with an unencoded ``@`` in it: SQLAlchemy would take the end of
    the password for the host, and every message naming the database would print it.
    """
    from sqlalchemy.engine import make_url  # deferred: only commands that load config pay
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"{label} is not a database URL "
            "(e.g. sqlite:///ircbot.db or postgresql://user@host/dbname)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return  # a file path, in which '@' is an ordinary character
    before_query = url.partition("?")[0]
    if before_query.count("@") > 1:
        raise ConfigError(
            f"{label}: the user name or password holds an '@': write it as %40 "
            "(postgresql://user:pass%40word@host/dbname)"
        )


def load_config(
    path: str | os.PathLike[str],
    plugin_schemas: Mapping[str, type] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and check the configuration; every problem is a one-line ConfigError."""
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file (create one with: ircbot init)") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    schemas = dict(_CORE_SECTIONS)
    schemas.update(plugin_schemas or {})
    for name, value in raw.items():
        if name not in schemas:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(schemas)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name} must be a [section], not a single value")
    overrides, labels = _env_overrides(os.environ if environ is None else environ, schemas)
    sections = {}
    for name, schema in schemas.items():
        merged = {**raw.get(name, {}), **overrides.get(name, {})}
        sections[name] = parse_section(schema, merged, f"{source}: [{name}]", labels.get(name))
    _check_database_url(
        sections["database"].url,
        labels.get("database", {}).get("url") or f"{source}: [database] url",
    )
    warnings = _check_sections(sections, source, labels)
    return Config(
        irc=sections.pop("irc"),
        bot=sections.pop("bot"),
        database=sections.pop("database"),
        notify=sections.pop("notify"),
        plugins=types.MappingProxyType(sections),
        source=source,
        environ=environ,
        warnings=tuple(warnings),
    )


def _check_sections(
    sections: Mapping[str, Any], source: str, labels: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Run every section's own cross-key check (see :class:`SectionCheck`)."""
    warnings: list[str] = []
    for name, section in sections.items():
        if not isinstance(section, SectionCheck):
            continue

        def label(key: str, name: str = name) -> str:
            return labels.get(name, {}).get(key) or f"{source}: [{name}] {key}"

        warnings += section.check(sections["bot"], label)
    return warnings


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def mask_secret(value: Any) -> Any:
    """What ``config check`` shows of a secret: URLs keep their shape, passwords go, both
    the one before the host and a ``password=`` query parameter (libpq takes either)."""
    if isinstance(value, str) and "://" in value:
        # up to the last '@' before the path, should a password hold one unencoded
        value = re.sub(r"(://[^:/@]*:)[^/?#]*@", r"\1****@", value)
        return re.sub(r"([?&]password=)[^&]*", r"\1****", value, flags=re.IGNORECASE)
    return "****" if value else value


def render_section(name: str, section: Any, *, commented_help: bool, mask: bool = False) -> str:
    """A TOML ``[name]`` block of ``section``'s values, each key with its description."""
    out = [f"[{name}]"]
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if mask and f.metadata.get("secret"):
            value = mask_secret(value)
        if commented_help:
            out.append(f"# {f.metadata.get('help', '')}")
        out.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


def render_config(config: Config, *, mask: bool) -> str:
    """The effective configuration as TOML (``config check``)."""
    blocks = [
        render_section("irc", config.irc, commented_help=False, mask=mask),
        render_section("bot", config.bot, commented_help=False, mask=mask),
        render_section("database", config.database, commented_help=False, mask=mask),
        render_section("notify", config.notify, commented_help=False, mask=mask),
    ]
    blocks += [
        render_section(name, section, commented_help=False, mask=mask)
        for name, section in config.plugins.items()
    ]
    return "\n".join(blocks)


def starter_config(plugin_schemas: Mapping[str, type]) -> str:
    """The commented file ``ircbot init`` writes: every key, its default and what it means."""
    header = (
        "# livechat-bot configuration. Every key is shown with its default.\n"
        "# Any key can be overridden from the environment as IRCBOT_<SECTION>__<KEY>,\n"
        "# e.g. IRCBOT_IRC__HOST=irc.example.net. Secrets never go in this file:\n"
        "# name an environment variable (sasl_password_env, smtp_password_env...) or a file\n"
        "# (sasl_password_file...).\n\n"
    )
    schemas = {**_CORE_SECTIONS, **plugin_schemas}
    return header + "\n".join(
        render_section(name, schema(), commented_help=True) for name, schema in schemas.items()
    )


def reference_table(schemas: Mapping[str, type]) -> str:
    """The Markdown configuration reference for the README, from the same declarations."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    hints_of = {name: typing.get_type_hints(schema) for name, schema in schemas.items()}
    for name, schema in schemas.items():
        for f in dataclasses.fields(schema()):
            tp = hints_of[name][f.name]
            type_name = "list" if typing.get_origin(tp) is list else tp.__name__
            default = _toml_value(getattr(schema(), f.name))
            rows.append(
                f"| `[{name}] {f.name}` | {type_name} | `{default}` | {f.metadata['help']} |"
            )
    return "\n".join(rows)


CORE_SECTIONS = types.MappingProxyType(_CORE_SECTIONS)

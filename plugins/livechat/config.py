"""The ``[livechat]`` configuration section: the process's numbers and its first team.

The defaults are the promise made to trainees in the original process ("usually within 24
hours of being told you're ready"); each key carries the one-line description that
``ircbot init`` and the README reference table show.

``coordinators`` and ``helpers`` hand out roles, so they are checked against the identity mode
before the bot starts (:meth:`LivechatConfig.check`, the rules in :mod:`ircbot.masks`): a
``nick!user@host`` mask in account mode, a mask that matches any host or a malformed one is
a configuration error; an unchecked ident on a shared host is a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ircbot.config import BotConfig, ConfigError, option
from ircbot.masks import is_mask, matches_any_host, parse_mask, weak_ident_on_shared_host

__all__ = ["DEFAULT_WELCOME", "WEEKDAYS", "LivechatConfig", "rules"]


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

DEFAULT_WELCOME = (
    "Ask here to be invited to shadow live chats; when you have helped with a few, "
    "the helpers you worked with vouch for you."
)


@dataclass(frozen=True)
class LivechatConfig:
    """How the trainee-approval process runs."""

    channel: str = option("", "channel for announcements; empty: the first joined channel")
    threshold: int = option(2, "distinct helpers' vouches that make a trainee ready", minimum=1)
    sla_hours: float = option(
        24.0,
        "the promise: hours a ready trainee may wait for promotion before they are overdue",
        minimum=0,
    )
    first_reminder_hours: float = option(
        12.0,
        "hours a ready trainee waits before coordinators are first reminded (before the "
        "promise runs out, so that someone still has time to act)",
        minimum=0,
    )
    reminder_hours: float = option(
        12.0, "hours between reminders while a ready trainee stays unpromoted", minimum=0.01
    )
    idle_days: float = option(
        14.0,
        "days without a vouch before a trainee is reminded, and again before closing",
        minimum=0.01,
    )
    escalate_hours: float = option(
        4.0,
        "hours a ready ping may reach no coordinator on IRC before those with a mail "
        "address are mailed",
        minimum=0,
    )
    digest: bool = option(
        False, "mail the weekly digest to every coordinator with an address (else: !email digest)"
    )
    digest_day: str = option("monday", "the weekly digest's day (UTC)", choices=WEEKDAYS)
    digest_hour: int = option(8, "the weekly digest's hour, 0 to 23 (UTC)", minimum=0)
    coordinators: list[str] = option(
        [],
        "coordinator accounts, seeded at start; in hostmask mode nick!user@host masks, when seen",
    )
    helpers: list[str] = option(
        [],
        "helper accounts, seeded at start; in hostmask mode nick!user@host masks, when seen",
    )
    welcome: str = option(DEFAULT_WELCOME, "what a new trainee is told happens next")
    channel_list_max: int = option(
        6,
        "the trainee and ready lists answer in the channel up to this many names, else privately",
        minimum=0,
    )
    page_size: int = option(20, "entries per page when a list goes by private message", minimum=1)
    report_dir: str = option(
        "", "folder the bot rewrites with the HTML report (ircbot report --html); empty: never"
    )
    report_every: float = option(60.0, "minutes between rewrites of report_dir", minimum=1)
    report_public: bool = option(
        False, "leave notes and reasons out of the report written to report_dir"
    )

    def check(self, bot: BotConfig, label: Callable[[str], str]) -> list[str]:
        """Refuse masks that would give a role to anyone; warn about weak ones.

        In account mode a person is a services account and a mask would match whoever is
        logged in under any account and takes the nick, so a mask there is an error. In
        hostmask mode see :mod:`ircbot.masks` for why a host that is only wildcards is
        refused and an unchecked ident on a shared host only warned about.
        """
        if self.digest_hour > 23:
            hour = self.digest_hour
            raise ConfigError(f"{label('digest_hour')} must be from 0 to 23, not {hour}")
        warnings = []
        for key in ("coordinators", "helpers"):
            for entry in filter(is_mask, getattr(self, key)):
                where = f"{label(key)}: {entry!r}"
                if bot.identity == "account":
                    raise ConfigError(
                        f"{where} is a nick!user@host mask, and in account mode "
                        '([bot] identity = "account") only services account names are '
                        "trusted: list the account"
                    )
                try:
                    parse_mask(entry)
                except ValueError:
                    raise ConfigError(
                        f"{where} is neither an account name nor a nick!user@host mask "
                        "(one '!' before one '@', no spaces)"
                    ) from None
                if matches_any_host(entry):
                    raise ConfigError(
                        f"{where} matches any host: name the host (or a host pattern with a "
                        "fixed part), since anyone can pick a nick and a user name"
                    )
                if weak_ident_on_shared_host(entry):
                    warnings.append(
                        f"{where}: an unchecked ident ('~' or a wildcard) on a shared host: "
                        "anyone connecting from those hosts can match it"
                    )
        return warnings


def rules(section: object) -> LivechatConfig:
    """The ``[livechat]`` section as configured, or its defaults when the file has none.

    ``section`` is what the core holds for the plugin: a context's ``ctx.config`` for a
    command, a job or an event handler; ``config.plugins.get("livechat")`` on the command line.
    """
    return section if isinstance(section, LivechatConfig) else LivechatConfig()

"""The ``[livechat]`` configuration section: the process's numbers and its first team.

The defaults are the promise made to trainees in the original process ("usually within 24
hours of being told you're ready"); each key carries the one-line description that
``ircbot init`` and the README reference table show.
"""

from __future__ import annotations

from dataclasses import dataclass

from ircbot.config import option

__all__ = ["DEFAULT_WELCOME", "LivechatConfig"]

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
        "hours a ready trainee may wait for promotion before coordinators are reminded",
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
        "!trainees and !ready answer in the channel up to this many names, else privately",
        minimum=0,
    )
    page_size: int = option(20, "entries per page when a list goes by private message", minimum=1)

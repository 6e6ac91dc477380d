"""Karma: people thank each other, and the bot keeps count.

``!thank <nick> [why...]`` tells them (durably: whoever is away gets it when back) and
counts it; ``!karma [nick]`` says how many thanks someone has had. A day's thanks per
person are capped by ``[karma] limit``. An example of a whole plugin: config, commands,
a table of its own and the migration branch that makes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from ircbot import Base, CommandContext, Plugin, Refusal, Target, UTCDateTime, option


@dataclass(frozen=True)
class KarmaConfig:
    limit: int = option(10, "most thanks one person may give in a day", minimum=1)


class Thanks(Base):
    """One thank-you: who gave it to whom (identity keys), when, and why."""

    __tablename__ = "karma_thanks"

    id: Mapped[int] = mapped_column(primary_key=True)
    giver: Mapped[str] = mapped_column(String(255), index=True)
    receiver: Mapped[str] = mapped_column(String(255), index=True)
    reason: Mapped[str | None] = mapped_column(String(400))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


# The table comes from migrations/, a branch of its own (label "karma").
plugin = Plugin("karma", config=KarmaConfig, migrations=Path(__file__).parent / "migrations")


def received(ctx: CommandContext, key: str) -> int:
    return ctx.session.scalar(select(func.count()).where(Thanks.receiver == key)) or 0


@plugin.command("thank", usage="<who:nick> [why...]", identified=True, help="Thank someone.")
def thank(ctx: CommandContext, who: Target, why: str | None = None) -> None:
    assert ctx.sender is not None  # identified=True: the bot refuses the unidentified itself
    if who.identity is None:
        raise Refusal(f"{who.nick} isn't here and identified; I can't tell who that is.")
    if who.identity.key == ctx.sender.key:
        raise Refusal("thanking yourself doesn't count.")
    since = ctx.now - dt.timedelta(days=1)
    given = ctx.session.scalar(
        select(func.count()).where(Thanks.giver == ctx.sender.key, Thanks.at > since)
    )
    if (given or 0) >= ctx.config.limit:
        raise Refusal(f"that's {ctx.config.limit} thanks today already; the rest tomorrow.")
    ctx.session.add(Thanks(giver=ctx.sender.key, receiver=who.identity.key, reason=why, at=ctx.now))
    ctx.notify(who.identity.key, f"{ctx.nick} thanks you{': ' + why if why else '.'}")
    ctx.reply(f"told {who.nick}; that's {received(ctx, who.identity.key)} thanks for them.")


@plugin.command("karma", usage="[who:nick]", help="How many thanks someone has had (you: no nick).")
def karma(ctx: CommandContext, who: Target | None = None) -> None:
    if who is None:
        if ctx.sender is None:
            raise Refusal("I can't tell who you are; name a nick.")
        ctx.reply(f"you have had {received(ctx, ctx.sender.key)} thanks.")
    elif who.identity is None:
        raise Refusal(f"{who.nick} isn't here and identified; I can't tell who that is.")
    else:
        ctx.reply(f"{who.nick} has had {received(ctx, who.identity.key)} thanks.")

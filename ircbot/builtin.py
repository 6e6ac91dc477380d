"""The core's own commands: ``!ping`` to see the bot is alive, ``!help`` to learn the rest."""

from __future__ import annotations

from ircbot.context import CommandContext
from ircbot.plugin import Plugin

__all__ = ["plugin"]

plugin = Plugin("core")


@plugin.command("ping", usage="[text...]", help="Check that the bot is alive; echoes any text.")
def ping(ctx: CommandContext, text: str | None = None) -> None:
    ctx.reply(f"pong {text}" if text else "pong")


@plugin.command(
    "help",
    usage="[command]",
    help="List the commands you may use, or explain one.",
)
def help_(ctx: CommandContext, name: str | None = None) -> None:
    """Answered from ``ctx.commands``, the read-only catalog: what exists, and for whom."""
    catalog, prefix = ctx.commands, ctx.prefix
    if catalog is None:  # a context made by hand, outside a bot: nothing is declared
        ctx.reply("No commands here.")
        return
    if name:
        command = catalog.find(name)
        if command is None:
            ctx.reply(f"No command {prefix}{name.removeprefix(prefix)}; say {prefix}help.")
            return
        ctx.reply(catalog.describe(command))
        return
    usable = " ".join(f"{prefix}{c.name}" for c in catalog.usable_by(ctx))
    ctx.reply(f"Commands: {usable}. Say {prefix}help <command> for details.")

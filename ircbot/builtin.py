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
    dispatcher = ctx.dispatcher
    prefix = ctx.prefix
    if name:
        command = dispatcher.commands.get(name.lower().removeprefix(prefix))
        if command is None:
            ctx.reply(f"No command {prefix}{name.removeprefix(prefix)}; say {prefix}help.")
            return
        who = f" ({ctx.role_name(command.role)}s)" if command.role is not None else ""
        ctx.reply(f"{dispatcher.usage_line(command)}: {command.help_text(prefix)}{who}")
        return
    role = dispatcher.role_of(ctx) if ctx.sender else None
    usable = [
        f"{prefix}{c.name}"
        for c in dispatcher.declared
        if c.role is None or (role is not None and role >= c.role)
    ]
    ctx.reply(f"Commands: {' '.join(usable)}. Say {prefix}help <command> for details.")

"""The coordinators' commands: the ready list, promotion, holds, rejections and roles.

Same shape as :mod:`.commands`: resolve, call one workflow function, reply briefly. The
dispatcher has already checked the role declared here (the role resolver recorded the
speaker first, see :func:`.commands.record_speaker`); the workflow checks it again, so the
command line (which has no dispatcher) gets the same rule. A refusal is an
:class:`ircbot.Refusal` the dispatcher answers.
"""

from __future__ import annotations

from ircbot.context import CommandContext
from ircbot.identity import Target

from . import team, views, workflow
from .commands import highlight, record_speaker, status_of, subject, unit
from .config import rules
from .declaration import plugin
from .models import READY
from .roles import Role
from .store import open_attempt

__all__: list[str] = []


@plugin.command(
    "ready",
    usage="[nick:nick]",
    role=Role.COORDINATOR,
    help="Trainees awaiting promotion: vouchers, chat account, time waiting (one in detail).",
)
def ready(ctx: CommandContext, target: Target | None = None) -> None:
    r = rules(ctx.config)
    if target is not None:
        who = subject(ctx, target)
        attempt = open_attempt(ctx.session, who.person.id) if who.person else None
        if attempt is None or attempt.state != READY:
            ctx.reply(status_of(ctx, who, me=False))
            return
        (view,) = views.attempt_views(ctx.session, r, ctx.now, [attempt], past=True)
        ctx.reply(views.ready_line(view, ctx.now, detail=True))
        return
    total, overdue, waiting = views.ready_list(ctx.session, r, ctx.now, r.page_size)
    if not waiting:
        ctx.reply("nobody is waiting for promotion")
        return
    summary = f"{total} ready for promotion, {overdue} overdue"
    if total == 1:
        ctx.reply(f"{summary}: {views.ready_line(waiting[0], ctx.now)}")
        return
    if ctx.channel:
        ctx.reply(f"{summary}; the list is in private")
    for view in waiting:
        ctx.private(views.ready_line(view, ctx.now))
    if total > len(waiting):
        ctx.private(f"and {total - len(waiting)} more: ircbot trainee list --state ready")


@plugin.command(
    "promote",
    usage="<nick:nick>",
    role=Role.COORDINATOR,
    help="Make a ready trainee a helper (by nick, or account:NAME / their mask).",
)
def promote(ctx: CommandContext, target: Target) -> None:
    who = subject(ctx, target)
    workflow.promote(unit(ctx), record_speaker(ctx), who)
    ctx.reply(f"{who.label} is now a helper; they have been told")


@plugin.command(
    "hold",
    usage="<nick:nick> <reason...>",
    role=Role.COORDINATOR,
    help="Pause a trainee: no pings, no promotion, until {prefix}unhold.",
)
def hold(ctx: CommandContext, target: Target, reason: str) -> None:
    who = subject(ctx, target)
    workflow.hold(unit(ctx), record_speaker(ctx), who, reason)
    ctx.reply(f"{who.label} is on hold: {reason}")


@plugin.command(
    "unhold", usage="<nick:nick>", role=Role.COORDINATOR, help="Resume a trainee put on hold."
)
def unhold(ctx: CommandContext, target: Target) -> None:
    who = subject(ctx, target)
    attempt, pinged = workflow.unhold(unit(ctx), record_speaker(ctx), who)
    if attempt.state == READY:
        ctx.reply(f"{who.label} is off hold and ready; coordinators are pinged")
        highlight(ctx, pinged, f"{who.nick} is ready for promotion.")
    else:
        ctx.reply(f"{who.label} is off hold, back in training")


@plugin.command(
    "reject",
    usage="<nick:nick> <reason...>",
    role=Role.COORDINATOR,
    help="End a trainee's training, with the reason kept (they may {prefix}newhelper again).",
)
def reject(ctx: CommandContext, target: Target, reason: str) -> None:
    who = subject(ctx, target)
    workflow.reject(unit(ctx), record_speaker(ctx), who, reason)
    ctx.reply(f"{who.label}'s training is closed (rejected): {reason}")


def _change(ctx: CommandContext, which: str, action: str, target: Target) -> None:
    who = subject(ctx, target, create=action == "add")
    change = team.change_role(unit(ctx), record_speaker(ctx), who, which, action)
    if change.new >= change.old:
        line = f"{who.label} is now a {change.new.label}"
    elif change.new:
        line = f"{who.label} is no longer a {change.old.label}, now a {change.new.label}"
    else:
        line = f"{who.label} is no longer a {change.old.label}"
    if change.old >= Role.HELPER > change.new:
        line += "; their vouches stay on record but no longer count"
    moved = [f"{t.person.name} ({state})" for t, state in change.moved]
    ctx.reply(line + (f"; now {', '.join(moved)}" if moved else ""))


@plugin.command(
    "helper",
    usage="<add|remove> <nick:nick>",
    role=Role.COORDINATOR,
    help="Add or remove a helper: someone here now, or account:NAME (a mask in hostmask mode).",
)
def helper(ctx: CommandContext, action: str, target: Target) -> None:
    _change(ctx, "helper", action, target)


@plugin.command(
    "coordinator",
    usage="<add|remove> <nick:nick>",
    role=Role.COORDINATOR,
    help="Add or remove a coordinator: someone here now, or account:NAME (or a mask).",
)
def coordinator(ctx: CommandContext, action: str, target: Target) -> None:
    _change(ctx, "coordinator", action, target)

"""The IRC face of the trainee process: what trainees and helpers say to the bot.

Each handler reads top to bottom: resolve who is speaking and whom they name, call one
workflow function, reply in a line or two naming the nick and the state. The rules and the
reasons for refusing live in :mod:`.workflow`; a refusal (:class:`~.workflow.WorkflowError`,
an :class:`ircbot.Refusal`) is replied as it is by the dispatcher, which undoes the command
but keeps what :func:`record_speaker` recorded before it.
Coordinators' commands are in :mod:`.admin`; the bot events (roles, start, timers,
deliveries, people seen) at the end of this file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from ircbot.context import BaseContext, CommandContext, JobContext
from ircbot.identity import Identity, Target, identity_key
from ircbot.masks import is_mask
from ircbot.outbox import OutboxMessage

from . import team, views, workflow
from .config import LivechatConfig, rules
from .declaration import plugin
from .escalation import mail_reminders
from .models import ON_HOLD, READY, TRAINING, Person
from .roles import Role, role_name
from .store import AmbiguousNick, Subject, Unit, log_delivery, nick_claimant, person_by_key, touch
from .timers import run_timers

__all__ = ["highlight", "record_speaker", "rules", "status_of", "subject", "unit"]

logger = logging.getLogger(__name__)

HISTORY_LINES = 30  # the latest events by private message; the CLI shows them all


# -- helpers every handler uses ------------------------------------------------------------------
_SPEAKER = "livechat.speaker"  # key in Session.info: (identity key, Person) of the speaker


def unit(ctx: BaseContext) -> Unit:
    """The workflow's unit of work for this command or job (its texts spell ``[bot] prefix``)."""
    return Unit(ctx.session, ctx.now, rules(ctx.config), ctx, ctx.prefix)


def status_of(ctx: CommandContext, who: Subject, *, me: bool) -> str:
    """``!status`` of ``who``, with the commands it suggests spelled with ``[bot] prefix``."""
    return views.status(ctx.session, rules(ctx.config), ctx.now, who, me=me, prefix=ctx.prefix)


def record_speaker(ctx: CommandContext) -> Person | None:
    """Record who is speaking and return their row (None if unidentified): a write.

    The first call of a command does what :func:`record_person` does (creates the row of a
    new person, notes the nick, applies a config mask's role) and takes the command's
    checkpoint (:meth:`~ircbot.context.CommandContext.checkpoint`), so what it recorded stays
    even if the command is then refused. Every handler calls it before anything can refuse;
    for a command that requires a role the resolver (:func:`resolve_role`) has already done
    so, before the dispatcher checks the role. Later calls return the row kept in the
    command's own session.
    """
    if ctx.sender is None:
        return None
    found = ctx.session.info.get(_SPEAKER)
    if found is not None and found[0] == ctx.sender.key:
        return found[1]
    person = record_person(ctx, ctx.sender, ctx.nick)
    ctx.session.info[_SPEAKER] = (ctx.sender.key, person)
    ctx.checkpoint()
    return person


def record_person(ctx: BaseContext, identity: Identity, nick: str) -> Person:
    """Record the person behind ``identity`` (a row created if new), the nick they use now,
    and the role a configured ``nick!user@host`` mask grants them if it is more; return
    their row."""
    person = touch(unit(ctx), identity.key, nick, ctx.network.fold(nick))
    granted = mask_grant(rules(ctx.config), identity)
    if granted > person.role and not person.role_manual:
        team.seed_role(unit(ctx), person.identity, granted, "config mask")
    return person


def subject(ctx: CommandContext, target: Target, *, create: bool = False) -> Subject:
    """Whom a person argument names: the nick's verified holder now, the identity named
    explicitly (``account:NAME``, a mask), or, for a nick nobody holds, its one claimant
    (:func:`~.store.nick_claimant`).

    ``create`` (role changes) makes a row for a verified holder or an explicit identity the
    bot has not stored yet, and refuses an offline nick: a role goes to someone the bot can
    see and identify now, or to an identity named in full, never to a nick's last user.
    """
    if target.identity is not None:
        key = target.identity.key
        label = target.nick
        if target.explicit:
            person = person_by_key(ctx.session, key)
            if person is None and create:
                person = touch(unit(ctx), key)
            return Subject(person.name if person else label, person)
        if create:
            person = touch(unit(ctx), key, target.nick, ctx.network.fold(target.nick))
            return Subject(target.nick, person)
        return Subject(target.nick, person_by_key(ctx.session, key))
    if target.online:
        raise workflow.NotIdentified(
            f"{target.nick} is not logged in, so I can't tell who they are"
        )
    if create:
        raise workflow.NotIdentified(
            f"{target.nick} is not online: a role needs them here and identified, "
            "or named in full (account:NAME, or their mask)"
        )
    try:
        found = nick_claimant(ctx.session, target.nick, ctx.network.fold(target.nick))
    except AmbiguousNick as err:
        raise workflow.NotIdentified(str(err)) from None
    return Subject(target.nick, found, offline=True)


def channel(ctx: BaseContext) -> str | None:
    return rules(ctx.config).channel or None


def highlight(ctx: BaseContext, keys: Iterable[str], text: str) -> None:
    """Name the people of ``keys`` who are present in the channel (their ping is on its way)."""
    net = ctx.network
    nicks = [nick for key in keys if net.is_reachable(key) and (nick := net.nick_of(key))]
    if nicks:
        ctx.announce(f"{', '.join(nicks)}: {text}", channel(ctx))


def in_pages(ctx: CommandContext, items: Sequence[str], per_line: int = 5) -> None:
    """Send a list privately, a few items a line: never a flood in the channel."""
    for i in range(0, len(items), per_line):
        ctx.private(", ".join(items[i : i + per_line]))


# -- trainees ------------------------------------------------------------------------------------
@plugin.command(
    "newhelper",
    usage="[chat-account]",
    identified=True,
    help="Become a trainee (give your live-chat account name if you have one).",
)
def newhelper(ctx: CommandContext, chat_account: str | None = None) -> None:
    person = record_speaker(ctx)
    registration = workflow.register(unit(ctx), person, chat_account)
    if not registration.created:
        ctx.reply(status_of(ctx, Subject(ctx.nick, person), me=True))
        return
    r = rules(ctx.config)
    again = " back" if registration.again else ""
    ctx.reply(
        f"welcome{again}! You are now a trainee; {r.threshold} helpers' vouches "
        f"make you ready. {r.welcome}"
    )
    ctx.announce(
        f"New trainee: {ctx.nick}. Helpers, invite them to shadow your chats!", channel(ctx)
    )


@plugin.command(
    "withdraw",
    usage="[reason...]",
    identified=True,
    help="Leave training ({prefix}newhelper to return).",
)
def withdraw(ctx: CommandContext, reason: str | None = None) -> None:
    workflow.withdraw(unit(ctx), record_speaker(ctx), reason)
    ctx.reply(
        f"you have left training (withdrawn); say {ctx.prefix}newhelper to come back any time"
    )


@plugin.command(
    "status",
    usage="[nick:nick]",
    help="A trainee's state, vouches and since when (yours if no nick).",
)
def status(ctx: CommandContext, target: Target | None = None) -> None:
    if target is None:
        person = record_speaker(ctx)
        if person is None:
            raise workflow.NotIdentified(
                "I can't tell who you are: log in to services, or name a nick"
            )
        ctx.reply(status_of(ctx, Subject(ctx.nick, person), me=True))
        return
    record_speaker(ctx)
    ctx.reply(status_of(ctx, subject(ctx, target), me=False))


@plugin.command("trainees", usage="[page:int]", help="Who is in training or ready, with counts.")
def trainees(ctx: CommandContext, page: int | None = None) -> None:
    record_speaker(ctx)
    number = page or 1
    found, listed, pages = views.trainees_page(ctx.session, rules(ctx.config), ctx.now, number)
    summary = f"{found[READY]} ready, {found[TRAINING]} in training, {found[ON_HOLD]} on hold"
    items = [f"{v.nick} ({v.attempt.state} {v.tally()})" for v in listed]
    if not items:
        ctx.reply(summary)
    elif ctx.channel and pages == 1 and len(items) <= rules(ctx.config).channel_list_max:
        ctx.reply(f"{summary}: {', '.join(items)}")
    else:
        if ctx.channel:
            ctx.reply(f"{summary}; the list is in private")
        in_pages(ctx, items)
        say = f"{ctx.prefix}trainees {min(number, pages) + 1}"
        more = f"; say {say} for more" if number < pages else ""
        ctx.private(f"page {min(number, pages)} of {pages}{more}")


@plugin.command("history", usage="<nick:nick>", help="A trainee's timeline, by private message.")
def history(ctx: CommandContext, target: Target) -> None:
    record_speaker(ctx)
    who = subject(ctx, target)
    if who.person is None:
        raise workflow.NotATrainee(f"I have no history for {who.label}")
    lines = views.history(ctx.session, who.person)
    if ctx.channel:
        ctx.reply(f"history of {who.label}: {len(lines)} events, sent privately")
    if len(lines) > HISTORY_LINES:
        ctx.private(f"{len(lines) - HISTORY_LINES} earlier events: ircbot trainee show NAME")
    for line in lines[-HISTORY_LINES:] or [f"{who.nick}: nothing recorded"]:
        ctx.private(line)


# -- helpers -------------------------------------------------------------------------------------
@plugin.command(
    "vouch",
    usage="<nick:nick> [note...]",
    role=Role.HELPER,
    help="Say a trainee you worked with is ready to help on their own (one vouch per helper).",
)
def vouch(ctx: CommandContext, target: Target, note: str | None = None) -> None:
    who = subject(ctx, target)
    result = workflow.vouch(unit(ctx), record_speaker(ctx), who, note)
    tally = f"{result.count}/{rules(ctx.config).threshold}"
    if result.repeat:
        ctx.reply(f"already vouched for {who.label} ({tally}){'; note updated' if note else ''}")
    elif result.transition == READY:
        ctx.reply(f"vouched for {who.label}: {tally}, ready; coordinators are pinged")
        highlight(ctx, result.pinged, f"{who.nick} is ready for promotion ({tally}).")
    else:
        state = "on hold" if result.attempt.state == ON_HOLD else result.attempt.state
        ctx.reply(f"vouched for {who.label}: {tally}, {state}")


@plugin.command("unvouch", usage="<nick:nick>", role=Role.HELPER, help="Withdraw your vouch.")
def unvouch(ctx: CommandContext, target: Target) -> None:
    who = subject(ctx, target)
    result = workflow.unvouch(unit(ctx), record_speaker(ctx), who)
    back = "; back to training" if result.transition == TRAINING else ""
    ctx.reply(
        f"withdrew your vouch for {who.label}: {result.count}/{rules(ctx.config).threshold}{back}"
    )


# -- bot events ----------------------------------------------------------------------------------
def role_masks(r: LivechatConfig) -> list[str]:
    """The configured ``nick!user@host`` masks, coordinators' first: in hostmask mode each
    names one person (see :mod:`ircbot.identity_policy`)."""
    return [e for e in (*r.coordinators, *r.helpers) if is_mask(e)]


def mask_grant(r: LivechatConfig, identity: Identity) -> Role:
    """The role the configured mask this person *is* gives them (none if they are no mask,
    or match several and so are none of them)."""
    entry = identity.mask_entry
    if entry is None:
        return Role.NONE
    key = identity_key(entry)
    for role, entries in ((Role.COORDINATOR, r.coordinators), (Role.HELPER, r.helpers)):
        if any(identity_key(e) == key for e in entries):
            return role
    return Role.NONE


@plugin.roles(names=role_name, masks=lambda config: role_masks(rules(config)))
def resolve_role(ctx: CommandContext, identity: Identity) -> Role:
    """The speaker's role: the people table, raised once by the config mask they are (and
    the speaker recorded, see :func:`record_speaker`)."""
    person = record_speaker(ctx)
    return person.role if person else Role.NONE


@plugin.on("seen")
def seen(ctx: JobContext, identity: Identity, nick: str) -> None:
    """Someone in a channel with the bot: a config mask that names them takes effect now.

    Otherwise a masked coordinator who never spoke to the bot would not be pinged. Most
    people match no mask, and that costs a look at the config, no database access. Whom a
    mask was applied to is remembered for this run (``ctx.memory``), so a rejoin costs none
    either: only a coordinator's decision (``role_manual``) lowers such a role, and then the
    mask no longer applies anyway.
    """
    granted = mask_grant(rules(ctx.config), identity)
    done: dict[str, Role] = ctx.memory.setdefault("mask_grants", {})
    if granted <= done.get(identity.key, Role.NONE):
        return
    record_person(ctx, identity, nick)
    done[identity.key] = granted


@plugin.on("start")
def seed_roles(ctx: JobContext) -> None:
    """Apply ``[livechat] coordinators/helpers`` account names to the people table."""
    r = rules(ctx.config)
    seeds: dict[str, Role] = {}
    for role, entries in ((Role.HELPER, r.helpers), (Role.COORDINATOR, r.coordinators)):
        for entry in entries:
            if not is_mask(entry):
                key = identity_key(entry)
                seeds[key] = max(role, seeds.get(key, Role.NONE))
    team.seed_roles(unit(ctx), seeds)


@plugin.job(every=60.0)
def timers(ctx: JobContext) -> None:
    """SLA reminders and idle trainees (see :mod:`.timers`); reminders mailed too."""
    work = unit(ctx)
    report = run_timers(work)
    if report.reminded or report.idle_reminded or report.idle_closed:
        logger.info("timers: %s", report)
    home = channel(ctx) or ctx.network.home_channel
    mail_reminders(work, report.reminded, channel=home)


@plugin.on("delivered")
def delivered(session: Session, message: OutboxMessage) -> None:
    """Pings and reminders reaching a coordinator go into the audit log."""
    log_delivery(session, message)

"""Mail's faces: the ``!email`` command, the shell's ``coordinator set-email``, the jobs.

Same shape as :mod:`.commands`: resolve, call one rule (:mod:`.contact`, :mod:`.escalation`,
:mod:`.digest`), answer briefly. ``!email`` works only in private: an address said in the
channel is out for everyone to read, so the bot refuses it there and keeps nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from ircbot.context import BaseContext, CommandContext, JobContext

from . import contact
from .cli import BadInput, _person, _unit, coordinator
from .commands import record_speaker, unit
from .config import rules
from .declaration import plugin
from .digest import send_digests
from .escalation import run_escalations
from .roles import Role
from .workflow import WorkflowError

__all__: list[str] = []

logger = logging.getLogger(__name__)


def _home(ctx: BaseContext) -> str | None:
    """Where the mails tell coordinators to speak: ``[livechat] channel`` or the first."""
    return rules(ctx.config).channel or ctx.network.home_channel


# -- IRC -----------------------------------------------------------------------------------------
@plugin.command(
    "email",
    usage="[what] [code]",
    role=Role.COORDINATOR,
    help=(
        "In private: your address for mail when IRC is not enough. {prefix}email ADDRESS, "
        "then {prefix}email confirm CODE (the code is mailed there); {prefix}email off; "
        "{prefix}email digest on, or off."
    ),
)
def email(ctx: CommandContext, what: str | None = None, code: str | None = None) -> None:
    say = f"{ctx.prefix}email"
    person = record_speaker(ctx)
    assert person is not None  # the role check needs an identified person
    if ctx.channel:
        raise WorkflowError(f"say {say} to me in a private message: an address is personal")
    work = unit(ctx)
    word = (what or "").lower()
    if not word:
        pending = f"; {person.email_pending} waits for its code" if person.email_pending else ""
        digest = "on" if person.digest or rules(ctx.config).digest else "off"
        if person.email:
            ctx.reply(f"mail for you goes to {person.email}, weekly digest {digest}{pending}")
        else:
            ctx.reply(f"no mail address set{pending}: {say} ADDRESS to set one")
        return
    if word == "confirm":
        if not code:
            raise WorkflowError(f"say {say} confirm CODE, with the code from the mail")
        address, left = contact.confirm_email(work, person, code)
        if address is not None:
            ctx.reply(f"confirmed: when IRC does not reach you, mail goes to {address}")
        elif left:
            ctx.reply(f"wrong code ({left} tries left)")
        else:
            ctx.reply(f"wrong code, and too many tries: say {say} ADDRESS again")
        return
    if word == "digest":
        if code not in ("on", "off"):
            raise WorkflowError(f"say {say} digest on, or {say} digest off")
        contact.set_digest(work, person, code == "on")
        where = f" to {person.email}" if person.email else f" once you set an address ({say})"
        ctx.reply(f"weekly digest {code}" + (where if code == "on" else ""))
        return
    if code is not None:
        raise WorkflowError(f"usage: {say} ADDRESS | confirm CODE | off | digest on|off")
    if word == "off":
        contact.clear_email(work, person)
        ctx.reply("no more mail for you; your address is forgotten")
        return
    if not ctx.out_of_band.mail:
        raise WorkflowError("this bot sends no mail (no [notify] smtp_url in its config)")
    address, secret = contact.request_email(work, person, what or "")
    ctx.mail(address, *_code_mail(ctx, secret), kind=contact.CONFIRM_KIND)
    ctx.reply(
        f"a code is on its way to {address}: answer here with {say} confirm CODE "
        f"within {contact.CODE_HOURS} h"
    )


def _code_mail(ctx: CommandContext, code: str) -> tuple[str, str]:
    say = f"{ctx.prefix}email confirm {code}"
    body = (
        f"{ctx.nick} asked the livechat bot on IRC to send mail to this address when a "
        "trainee waits for a coordinator and IRC does not reach them.\n\n"
        f"To confirm, say to the bot in a private message on IRC:\n\n    {say}\n\n"
        f"The code is valid for {contact.CODE_HOURS} hours. If you did not ask for this, "
        "ignore this mail: nothing more will be sent.\n"
    )
    return "Your livechat-bot confirmation code", body


# -- the shell -----------------------------------------------------------------------------------
@coordinator.command("set-email")
@click.argument("name")
@click.argument("address", required=False)
@click.option("--remove", is_flag=True, help="Forget NAME's address (no ADDRESS then).")
@click.option("--digest/--no-digest", default=None, help="Opt in to the weekly digest, or out.")
@click.pass_obj
def set_email(app: Any, name: str, address: str | None, remove: bool, digest: bool | None) -> None:
    """Set NAME's mail address (confirmed as given), for escalations, reminders, digests."""
    if (address is None) != remove and digest is None:
        raise BadInput("give ADDRESS, or --remove (or only --digest/--no-digest)")
    if address is not None and remove:
        raise BadInput("give ADDRESS or --remove, not both")
    try:
        with _unit(app, write=True) as work:
            person = _person(work, name)
            if address is not None or remove:
                contact.set_email(work, person, address, None)
            if digest is not None:
                contact.set_digest(work, person, digest)
            shown, role = person.email, person.role
            label = person.name
    except contact.BadAddress as err:
        raise BadInput(str(err)) from None
    if address is not None or remove:
        click.echo(f"{label}: mail goes to {shown}" if shown else f"{label}: no mail address")
    if digest is not None:
        click.echo(f"{label}: weekly digest {'on' if digest else 'off'}")
    if role < Role.COORDINATOR:
        click.echo(f"note: {label} is not a coordinator; only coordinators are mailed", err=True)


# -- jobs ----------------------------------------------------------------------------------------
@plugin.job(every=60.0)
def escalate(ctx: JobContext) -> None:
    """Mail the coordinators about ready trainees whose ping reached none of them on IRC."""
    mailed = run_escalations(unit(ctx), channel=_home(ctx))
    if mailed:
        logger.info("escalated by mail: attempts %s", mailed)


@plugin.job(every=300.0)
def weekly_digest(ctx: JobContext) -> None:
    """This week's digest, for whoever is due one (see :mod:`.digest`)."""
    sent = send_digests(unit(ctx), channel=_home(ctx))
    if sent:
        logger.info("weekly digest queued for %d coordinators", len(sent))

"""``ircbot trainee|helper|coordinator|export|report``: the process from a shell.

For the coordinator at a terminal: list and inspect trainees, promote one, import the sign-up
backlog, manage roles, export everything, and see whether the 24-hour promise is kept. The
commands call the same :mod:`.workflow` functions as the IRC commands, each in one
transaction; durable messages they cause (pings, "you are a trainee") go to the outbox, mail
and webhook posts to the out-of-band queue, and the running bot delivers them. A command
that only reads takes no lock; one that writes takes the write lock first (waiting up to
``[database] cli_timeout`` for the bot or another program, and saying so on stderr). None
prints while its transaction is open: everything is read into memory, the transaction
closed, then printed, so a slow pipe or pager holds no lock. They need only ``ctx.obj``
with ``.config``, ``.transaction(write=...)`` and ``.clock``. Bad input (an unknown name, a
malformed CSV row) is one line on stderr naming it, exit code 2, and nothing written.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from ircbot.identity import identity_key
from ircbot.outbound import OutOfBand

from . import htmlreport, reports, team, views, workflow
from .backlog import ImportRowError, import_backlog, read_csv
from .config import rules
from .declaration import plugin
from .models import STATES, Person
from .roles import Role
from .store import AmbiguousNick, OutboxNotifier, Subject, Unit, find_by_name, touch

__all__ = ["coordinator", "export", "helper", "report", "trainee"]


class BadInput(click.ClickException):
    """A refusal on the command line: one line naming the problem, exit code 2."""

    exit_code = 2


def _prefix(app: Any) -> str:
    """``[bot] prefix``: the shell runs no bot, but its texts name the bot's commands."""
    return str(app.config.bot.prefix)


@contextmanager
def _unit(app: Any, *, write: bool) -> Iterator[Unit]:
    """One transaction; a workflow refusal becomes BadInput and rolls everything back.

    ``write``: the unit changes something, so it takes the write lock first (saying so if it
    has to wait for it); otherwise it reads without a lock. Nothing is printed inside it.
    """
    now = app.clock.now()
    notify = app.config.notify
    oob = OutOfBand(mail=bool(notify.smtp_url), webhook=bool(notify.webhook_url))
    with app.transaction(write=write) as session:
        try:
            yield Unit(
                session,
                now,
                rules(app.config.plugins.get("livechat")),
                OutboxNotifier(session, now, oob),
                _prefix(app),
            )
        except workflow.WorkflowError as err:
            raise BadInput(str(err)) from None


def _find(unit: Unit, name: str) -> Person | None:
    try:
        return find_by_name(unit.session, name)
    except AmbiguousNick as err:
        raise BadInput(str(err)) from None


def _person(unit: Unit, name: str) -> Person:
    person = _find(unit, name)
    if person is None:
        raise BadInput(f"unknown name {name!r}: no account or last nick matches")
    return person


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


# -- trainee -------------------------------------------------------------------------------------
@click.group()
def trainee() -> None:
    """Trainees: list, show, promote, import the sign-up backlog."""


@trainee.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only this state (default: open ones).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_obj
def trainee_list(app: Any, state: str | None, as_json: bool) -> None:
    """List trainees (training, ready and on hold unless --state says otherwise)."""
    with _unit(app, write=False) as unit:
        rows = reports.attempt_rows(unit.session, unit.rules, unit.now, state)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        late = " OVERDUE" if r["overdue"] else ""
        waiting = f" waiting {r['waiting']}" if r["waiting"] else ""
        click.echo(
            f"{r['id']:>6} {r['nick'] or r['identity']:<20} {r['state']:<9} "
            f"{r['vouches']}/{r['threshold']} {r['chat_account'] or '-'}{waiting}{late}"
        )
    click.echo(f"{len(rows)} trainee(s)", err=True)


@trainee.command("show")
@click.argument("name")
@click.pass_obj
def trainee_show(app: Any, name: str) -> None:
    """A trainee's status and full history."""
    with _unit(app, write=False) as unit:
        person = _person(unit, name)
        status = views.status(
            unit.session, unit.rules, unit.now, Subject(name, person), me=False, prefix=unit.prefix
        )
        history = list(views.history(unit.session, person))
    click.echo(status)
    click.echo(f"identity {person.identity}, last nick {person.last_nick or '-'}")
    for line in history:
        click.echo(f"  {line}")


@trainee.command("promote")
@click.argument("name")
@click.option("--by", "by", required=True, help="The coordinator promoting (account or nick).")
@click.pass_obj
def trainee_promote(app: Any, name: str, by: str) -> None:
    """Promote a ready trainee to helper, in a coordinator's name."""
    with _unit(app, write=True) as unit:
        coordinator = _person(unit, by)
        workflow.promote(unit, coordinator, Subject(name, _person(unit, name)))
    click.echo(f"{name} is now a helper (promoted by {coordinator.name})")


@trainee.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def trainee_import(app: Any, file: Path) -> None:
    """Make the people of a CSV backlog trainees (all rows or none); coordinators are told.

    Columns: account (required), nick, chat_account, signed_up, vouchers.
    """
    hostmask = getattr(app.config.bot, "identity", "account") == "hostmask"
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            rows = read_csv(handle, hostmask=hostmask)
        with _unit(app, write=True) as unit:
            result = import_backlog(unit, rows)
    except ImportRowError as err:
        raise BadInput(f"{file}: {err}; nothing was imported") from None
    except UnicodeDecodeError:
        raise BadInput(f"{file}: not UTF-8 text; nothing was imported") from None
    click.echo(f"imported {len(result.imported)}, ready now {len(result.ready)}")
    for line in result.skipped:
        click.echo(f"skipped {line}")


# -- roles ---------------------------------------------------------------------------------------
def _role_group(which: str) -> click.Group:
    role = Role.parse(which)
    group = click.Group(which, help=f"{which.capitalize()}s: add, remove, list.")

    @group.command("add")
    @click.argument("name")
    @click.pass_obj
    def add(app: Any, name: str) -> None:
        """Give NAME (an account, user@host, or a known nick) this role."""
        with _unit(app, write=True) as unit:
            person = _find(unit, name) or _new_person(app, unit, name)
            team.change_role(unit, None, Subject(name, person), which, "add")
        click.echo(f"{name} is now a {which}")

    @group.command("remove")
    @click.argument("name")
    @click.pass_obj
    def remove(app: Any, name: str) -> None:
        """Take this role from NAME (a coordinator becomes a helper)."""
        with _unit(app, write=True) as unit:
            change = team.change_role(
                unit, None, Subject(name, _person(unit, name)), which, "remove"
            )
        click.echo(f"{name} is now {change.new.label if change.new else 'without a role'}")
        for attempt, state in change.moved:
            click.echo(f"{attempt.person.name} is now {state}")

    @group.command("list")
    @click.pass_obj
    def listing(app: Any) -> None:
        """Everyone with this role or above."""
        with _unit(app, write=False) as unit:
            stmt = select(Person).where(Person.role >= role).order_by(Person.identity)
            people = list(unit.session.scalars(stmt))
        for person in people:
            click.echo(f"{person.identity:<30} {person.last_nick or '-':<20} {person.role.label}")

    return group


def _new_person(app: Any, unit: Unit, name: str) -> Person:
    hostmask = getattr(app.config.bot, "identity", "account") == "hostmask"
    if hostmask and "@" not in name:
        raise BadInput(f"unknown name {name!r}: in hostmask mode give user@host")
    if not name or any(c in name for c in " !,;"):
        raise BadInput(f"{name!r} is not an account name")
    return touch(unit, identity_key(name))


helper = _role_group("helper")
coordinator = _role_group("coordinator")


# -- export and report ---------------------------------------------------------------------------
@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="json", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="JSON: a file; CSV: a folder for one file per table. Default: standard output.",
)
@click.pass_obj
def export(app: Any, fmt: str, output: Path | None) -> None:
    """Export people, their attempts, vouches and the audit log (one file each in CSV)."""
    with _unit(app, write=False) as unit:
        tables = reports.export_tables(unit.session)
    if fmt == "json":
        text = json.dumps(tables, indent=2, sort_keys=True)
        if output:
            output.write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)
        return
    if output:
        output.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        buffer = io.StringIO()
        columns = list(rows[0]) if rows else []
        # CRLF, as RFC 4180 says: then a CR typed in a note gets its cell quoted too
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(reports.spreadsheet_rows(rows))
        if output:
            (output / f"{name}.csv").write_text(buffer.getvalue(), encoding="utf-8")
        else:
            sys.stdout.write(f"# {name}\n{buffer.getvalue()}\n")


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value}h"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@click.option(
    "--html",
    "html_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the report as a static site (index.html, one page per attempt) to this folder.",
)
@click.option("--public", is_flag=True, help="With --html: leave notes and reasons out.")
@click.pass_obj
def report(app: Any, as_json: bool, html_dir: Path | None, public: bool) -> None:
    """The funnel registered → ready → promoted, the median waits, who is overdue now."""
    if html_dir is not None:
        _html_report(app, html_dir, public)
        return
    with _unit(app, write=False) as unit:
        data = reports.funnel(unit.session, unit.rules, unit.now)
    if as_json:
        _echo_json(data)
        return
    click.echo(
        f"registered {data['registered']} -> ready {data['ready']} -> promoted {data['promoted']}"
    )
    click.echo(
        f"median time to ready {_hours(data['median_hours_to_ready'])}, "
        f"ready to promoted {_hours(data['median_hours_ready_to_promoted'])}"
    )
    overdue = data["overdue_now"]
    click.echo(f"overdue now: {len(overdue)}" + (f" ({', '.join(overdue)})" if overdue else ""))


def _html_report(app: Any, out: Path, public: bool) -> None:
    """``report --html``: read one snapshot without taking the bot's write lock."""
    with app.transaction(write=False):  # the schema brought to head, as for every command
        pass
    hostmask = getattr(app.config.bot, "identity", "account") == "hostmask"
    try:
        engine = htmlreport.read_only_engine(app.config.database.url)
    except htmlreport.ReportError as err:
        raise BadInput(str(err)) from None
    try:
        with Session(engine) as session, session.begin():
            stats = htmlreport.write_report(
                session,
                rules(app.config.plugins.get("livechat")),
                app.clock.now(),
                out,
                public=public,
                hostmask=hostmask,
            )
    except htmlreport.ReportError as err:
        raise BadInput(str(err)) from None
    finally:
        engine.dispose()
    click.echo(
        f"wrote {out}/index.html and {stats.attempt_pages} attempt pages "
        f"in {stats.total_seconds:.1f} s (index {stats.index_seconds:.1f} s)"
    )


for _command in (trainee, helper, coordinator, export, report):
    plugin.cli(_command)

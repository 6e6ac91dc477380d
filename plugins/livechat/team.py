"""Who is on the team: role changes by coordinators, the CLI and the config seeds.

A role change is a state change like any other (one transaction, an audit event), with one
consequence worth its own module: a vouch counts only while its author is a helper (see
:mod:`.workflow`), so making someone a helper, or no longer one, re-runs the readiness rule
for every open attempt they vouched for. Someone made a helper while in training has their
attempt closed as promoted. The last coordinator cannot be removed: someone must be left to
promote.

A new coordinator missed the pings about the trainees who were already ready, so whoever
becomes one (a config mask on sight, ``!coordinator add``, the CLI, an account seed) is sent
one message listing them, held like a ping until they can read it. Only on an actual rise:
a seed applied again at every start finds the role already there and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from .models import OPEN, PROMOTED, READY, Attempt, Person, Vouch
from .roles import Role
from .store import Subject, Unit, coordinators, log_event, open_attempt, touch
from .workflow import (
    Nothing,
    NotIdentified,
    WrongState,
    cancel_pings,
    compare_and_set,
    require,
    settle,
)

__all__ = ["CATCH_UP", "RoleChange", "change_role", "seed_role", "seed_roles", "set_role"]

CATCH_UP = "catch_up"  # outbox kind and audit event: a new coordinator told who is waiting
CATCH_UP_NAMES = 10  # names in the message; !ready tells the rest


@dataclass
class RoleChange:
    person: Person
    old: Role
    new: Role
    moved: list[tuple[Attempt, str]]  # attempts whose readiness changed, and to what


_ADD = {"helper": Role.HELPER, "coordinator": Role.COORDINATOR}


def change_role(
    unit: Unit, actor: Person | None, subject: Subject, which: str, action: str
) -> RoleChange:
    """``!helper add|remove``, ``!coordinator add|remove`` (``actor`` None: the CLI)."""
    if actor is not None:
        require(actor, Role.COORDINATOR)
    person = subject.person
    if person is None:
        raise NotIdentified(
            f"I don't know {subject.nick}: they must be online or have used a command"
        )
    nick, old = subject.nick, person.role
    if action == "add":
        new = _ADD[which]
        if old >= new:
            raise Nothing(f"{nick} is already a {old.label}")
    elif which == "helper":
        if old >= Role.COORDINATOR:
            raise WrongState(
                f"{nick} is a coordinator: {unit.prefix}coordinator remove {nick} first"
            )
        if old < Role.HELPER:
            raise Nothing(f"{nick} is not a helper")
        new = Role.NONE
    else:
        if old < Role.COORDINATOR:
            raise Nothing(f"{nick} is not a coordinator")
        if len(coordinators(unit.session)) <= 1:
            raise WrongState(f"{nick} is the last coordinator: add another one first")
        new = Role.HELPER
    moved = set_role(unit, person, new, actor, manual=True)
    return RoleChange(person, old, new, moved)


def set_role(
    unit: Unit, person: Person, role: Role, actor: Person | None, *, manual: bool, why: str = ""
) -> list[tuple[Attempt, str]]:
    """Give ``person`` ``role``; settle the attempts whose counted vouches that changes."""
    old = person.role
    person.role = role
    person.role_manual = person.role_manual or manual
    detail = f"{old.label} -> {role.label}" + (f" ({why})" if why else "")
    log_event(unit, "role", person, actor, None, detail)
    if role >= Role.HELPER:  # made a helper directly: their own open attempt ends promoted
        attempt = open_attempt(unit.session, person.id, lock=True)
        if attempt is not None and compare_and_set(
            unit,
            attempt,
            OPEN,
            state=PROMOTED,
            state_since=unit.now,
            promoted_at=unit.now,
            promoted_by_id=actor.id if actor else None,
            closed_at=unit.now,
        ):
            log_event(unit, "promoted", person, actor, attempt, f"made a {role.label}")
            cancel_pings(unit, attempt)
    moved: list[tuple[Attempt, str]] = []
    if (old >= Role.HELPER) != (role >= Role.HELPER):
        unit.session.flush()
        for attempt in _attempts_vouched_by(unit, person):
            transition, _ = settle(unit, attempt, actor)
            if transition:
                moved.append((attempt, transition))
    if old < Role.COORDINATOR <= role:  # pinged already about those this change made ready
        _catch_up(unit, person, actor, {t.id for t, state in moved if state == READY})
    return moved


def _catch_up(unit: Unit, person: Person, actor: Person | None, pinged: set[int]) -> None:
    """One message to a new coordinator naming the trainees already waiting, oldest first."""
    waiting = (Attempt.state == READY, Attempt.id.not_in(pinged))
    total = unit.session.scalar(select(func.count()).select_from(Attempt).where(*waiting))
    if not total:
        return
    first = select(Attempt).where(*waiting).order_by(Attempt.ready_at, Attempt.id)
    shown = ", ".join(t.person.name for t in unit.session.scalars(first.limit(CATCH_UP_NAMES)))
    if total > CATCH_UP_NAMES:
        shown += f" and {total - CATCH_UP_NAMES} more"
    count = "1 trainee awaits" if total == 1 else f"{total} trainees await"
    text = f"{count} promotion: {shown} — say {unit.prefix}ready"
    unit.notifier.notify(person.identity, text, kind=CATCH_UP)
    log_event(unit, CATCH_UP, person, actor, None, shown)


def _attempts_vouched_by(unit: Unit, person: Person) -> list[Attempt]:
    stmt = (
        select(Attempt)
        .join(Vouch, Vouch.attempt_id == Attempt.id)
        .where(Vouch.voucher_id == person.id, Vouch.retracted_at.is_(None))
        .where(Attempt.state.in_(OPEN))
        .order_by(Attempt.id)
        .with_for_update(of=Attempt)
        .execution_options(populate_existing=True)
    )
    return list(unit.session.scalars(stmt))


def seed_role(unit: Unit, key: str, role: Role, why: str) -> Person:
    """A role from the config: raises a role, never overrides one set by hand."""
    person = touch(unit, key)
    if not person.role_manual and person.role < role:
        set_role(unit, person, role, None, manual=False, why=why)
    return person


def seed_roles(unit: Unit, seeds: Mapping[str, Role]) -> list[Person]:
    """Apply ``{identity key: role}`` from ``[livechat] coordinators/helpers`` at start."""
    return [seed_role(unit, key, role, "config") for key, role in seeds.items()]

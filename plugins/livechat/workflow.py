"""The rules of the trainee process, in one place, with no IRC in them.

The IRC commands and the command line both call these functions, so a rule (who may vouch,
when a trainee is ready, who gets pinged) cannot differ between the two. Each function takes
a :class:`~.store.Unit` (the open session, "now", the ``[livechat]`` settings and where
durable messages go), changes rows, writes the audit event and the outbox notifications in
that same transaction, and returns what happened or raises a :class:`WorkflowError` whose
text is the short answer for the person who asked (refusals are raised before anything is
written). The timed rules (SLA reminders, idle trainees) are in :mod:`.timers`, the backlog
import in :mod:`.backlog` and role changes in :mod:`.team`; all of them use :func:`settle`
and :func:`close` from here.

Decisions worth knowing:

- **Readiness** is one rule, :func:`settle`: a vouch *counts* while it is not retracted and
  its author is a helper or coordinator *now*. Live vouches, withdrawals, role changes,
  ``!unhold`` and CSV imports all go through it. Its transitions are compare-and-set updates
  (``... WHERE state = 'training'``) made while holding the trainee row's lock
  (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions begin IMMEDIATE and so run
  one at a time), so two helpers vouching at the same instant give one ``ready`` transition
  and one ping per coordinator.
- **Removing a helper** keeps their vouches on record (``!status`` and ``!ready`` show them
  marked "not counted") but they stop counting at once: a vouch means "a helper of the team
  says so", and the team no longer includes them. A ready trainee who falls below the
  threshold because of it goes back to training (logged, pings cancelled); adding the helper
  back makes their vouches count again, through the same rule (:func:`.team.set_role`).
  Promotions already made stand.
- **Roles** live in ``people.role``. Config seeds only ever raise a role, and never for a
  person whose role a coordinator or the CLI set by hand (``role_manual``): after the first
  start the database is the source of truth. Account seeds are applied at start; mask seeds
  (hostmask mode) are checked whenever the bot sees someone in its channels (their join, the
  channel's WHO when the bot joins, a nick change) or use a command, and written to that
  person's row the first time they match (there is no ``role_grants`` table), so counting
  vouches and pinging coordinators only ever read ``people``. A mask names no one until
  someone matching it is seen: a masked coordinator who has never been in a channel with the
  bot is not pinged, and on arrival is told in one message who is already waiting
  (:mod:`.team`), as is anyone who becomes a coordinator.
- **Promotion** is a compare-and-set from ``ready``; the loser is told who won and when.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ircbot.errors import Refusal

from .models import (
    ON_HOLD,
    OPEN,
    PROMOTED,
    READY,
    REJECTED,
    TRAINING,
    WITHDRAWN,
    Attempt,
    Person,
    Vouch,
)
from .past import clip, fit, past_of
from .roles import Role
from .store import (
    PING,
    REMINDER,
    TO_TRAINEE,
    Subject,
    Unit,
    coordinators,
    count_vouches,
    counted_vouches,
    latest_attempt,
    log_event,
    open_attempt,
    ref_of,
    stamp,
)
from .views import named

__all__ = [
    "AlreadyOnTeam",
    "AlreadyPromoted",
    "NotATrainee",
    "NotAllowed",
    "NotIdentified",
    "Nothing",
    "Registration",
    "VouchResult",
    "WorkflowError",
    "WrongState",
    "cancel_pings",
    "close",
    "compare_and_set",
    "hold",
    "promote",
    "ready_ping",
    "register",
    "reject",
    "require",
    "settle",
    "unhold",
    "unvouch",
    "vouch",
    "withdraw",
]

logger = logging.getLogger(__name__)


class WorkflowError(Refusal):
    """A refusal; ``str(err)`` is the short reply for the person who asked.

    An :class:`ircbot.Refusal`, so on IRC the dispatcher answers it as it answers any other;
    the command line (:mod:`.cli`) prints it.
    """


class NotIdentified(WorkflowError):
    """The bot cannot prove who someone is."""


class NotAllowed(WorkflowError):
    """The actor's role does not allow this."""


class NotATrainee(WorkflowError):
    """The person named has no open attempt."""


class AlreadyPromoted(WorkflowError):
    """The trainee is a helper already."""


class AlreadyOnTeam(WorkflowError):
    """A helper or coordinator said !newhelper."""


class WrongState(WorkflowError):
    """The attempt is not in a state where this makes sense."""


class Nothing(WorkflowError):
    """Nothing to do: it is so already."""


@dataclass
class Registration:
    attempt: Attempt
    created: bool
    again: bool = False  # a new attempt after a closed one


@dataclass
class VouchResult:
    attempt: Attempt
    count: int
    repeat: bool = False
    transition: str | None = None  # "ready" or "training" when this changed the state
    pinged: list[str] = field(default_factory=list)  # coordinators' identity keys


def require(actor: Person | None, role: Role) -> Person:
    if actor is None:
        raise NotIdentified("I can't tell who you are: log in to services first")
    if actor.role < role:
        raise NotAllowed(f"only {role.label}s can do that")
    return actor


def _not_trainee(unit: Unit, subject: Subject) -> NotATrainee:
    return NotATrainee(f"{subject.label} is not a trainee (ask them to say {unit.prefix}newhelper)")


def _promoted_text(nick: str, attempt: Attempt) -> str:
    by = attempt.promoted_by.name if attempt.promoted_by else "the bot"
    return f"{nick} is already a helper: promoted by {by} on {stamp(attempt.promoted_at)}"


def _attempt_for(unit: Unit, subject: Subject) -> Attempt:
    """The named person's open attempt, locked, or the refusal that says why there is none."""
    person = subject.person
    if person is None:
        raise _not_trainee(unit, subject)
    attempt = open_attempt(unit.session, person.id, lock=True)
    if attempt is not None:
        return attempt
    last = latest_attempt(unit.session, person.id)
    if last is not None and last.state == PROMOTED:
        raise AlreadyPromoted(_promoted_text(subject.nick, last))
    if person.role >= Role.HELPER:
        raise AlreadyPromoted(f"{subject.nick} is already a {person.role.label}")
    raise _not_trainee(unit, subject)


def compare_and_set(
    unit: Unit, attempt: Attempt, expected: tuple[str, ...], **values: object
) -> bool:
    """Compare-and-set the attempt's row; false if someone else changed its state first."""
    result = unit.session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.state.in_(expected))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    unit.session.refresh(attempt)
    return result.rowcount == 1


def cancel_pings(unit: Unit, attempt: Attempt) -> None:
    unit.notifier.cancel_notifications(ref_of(attempt), kind=PING)
    unit.notifier.cancel_notifications(ref_of(attempt), kind=REMINDER)


def _tell_trainee(unit: Unit, attempt: Attempt, text: str) -> None:
    unit.notifier.notify(attempt.person.identity, text, kind=TO_TRAINEE, ref=ref_of(attempt))


def settle(
    unit: Unit, attempt: Attempt, actor: Person | None, vouches: list[Vouch] | None = None
) -> tuple[str | None, list[str]]:
    """The readiness rule: move an attempt between training and ready to match its vouches.

    Call it holding the trainee's row lock; ``vouches`` are its counted vouches if the caller
    has just read them in this transaction. Returns the transition made (``"ready"``,
    ``"training"`` or None) and, on ``ready``, the identity keys of the coordinators pinged.
    """
    if attempt.state not in (TRAINING, READY):
        return None, []
    if vouches is None:
        vouches = counted_vouches(unit.session, attempt.id)
    count, threshold = len(vouches), unit.rules.threshold
    if attempt.state == TRAINING and count >= threshold:
        if not compare_and_set(
            unit, attempt, (TRAINING,), state=READY, state_since=unit.now, ready_at=unit.now
        ):
            return None, []
        log_event(unit, "ready", attempt.person, actor, attempt, f"{count}/{threshold}")
        text = ready_ping(unit, attempt, vouches)
        keys = [c.identity for c in coordinators(unit.session)]
        if not keys:
            logger.warning("%s is ready but there is no coordinator to tell", attempt.person.name)
        for key in keys:
            unit.notifier.notify(key, text, kind=PING, ref=ref_of(attempt))
        _tell_trainee(unit, attempt, "You are ready: a coordinator will add you to the team soon.")
        return READY, keys
    if attempt.state == READY and count < threshold:
        if not compare_and_set(
            unit, attempt, (READY,), state=TRAINING, state_since=unit.now, ready_at=None
        ):
            return None, []
        log_event(unit, "unready", attempt.person, actor, attempt, f"{count}/{threshold}")
        cancel_pings(unit, attempt)
        return TRAINING, []
    return None, []


def ready_ping(unit: Unit, attempt: Attempt, vouches: list[Vouch]) -> str:
    """The coordinators' ping: who (nick and identity), vouchers, chat account, any earlier
    hold or rejection (:mod:`.past`), and what to say. One IRC line: the names are few (the
    threshold) and a quoted reason is clipped."""
    person = attempt.person
    names = ", ".join(v.voucher.name for v in vouches)
    account = f"; chat account {clip(attempt.chat_account, 40)}" if attempt.chat_account else ""
    past = past_of(unit.session, [person.id]).get(person.id)

    def build(reason_bytes: int) -> str:
        warning = f" {past.text(reason_bytes)}." if past else ""
        return (
            f"{named(person)} is ready for promotion ({len(vouches)} vouches: {names}{account})."
            f"{warning} Say {unit.prefix}promote {person.name}"
        )

    return fit(build)


def register(unit: Unit, person: Person, chat_account: str | None = None) -> Registration:
    """``!newhelper``: open an attempt, or report the open one and create nothing."""
    if person.role >= Role.HELPER:
        raise AlreadyOnTeam(f"you are already a {person.role.label} on the team")
    session = unit.session
    current = open_attempt(session, person.id, lock=True)
    if current is not None:
        if chat_account and chat_account != current.chat_account:
            current.chat_account = chat_account
            log_event(unit, "chat_account", person, person, current, chat_account)
        return Registration(current, created=False)
    again = latest_attempt(session, person.id) is not None
    attempt = Attempt(
        person=person,
        state=TRAINING,
        state_since=unit.now,
        chat_account=chat_account,
        registered_at=unit.now,
        last_activity_at=unit.now,
        sla_reminders=0,
    )
    try:
        with session.begin_nested():
            session.add(attempt)
    except IntegrityError:  # the same person registering on two connections at once
        session.expunge(attempt)
        current = open_attempt(session, person.id)
        assert current is not None
        return Registration(current, created=False)
    person.role = max(person.role, Role.TRAINEE)
    detail = f"chat account {chat_account}" if chat_account else None
    log_event(unit, "registered", person, person, attempt, detail)
    return Registration(attempt, created=True, again=again)


def vouch(
    unit: Unit, voucher: Person | None, subject: Subject, note: str | None = None
) -> VouchResult:
    """``!vouch``: one vouch per helper per attempt; a repeat only updates the note."""
    voucher = require(voucher, Role.HELPER)
    if subject.person is not None and subject.person.id == voucher.id:
        raise WorkflowError("you can't vouch for yourself")
    session = unit.session
    attempt = _attempt_for(unit, subject)
    mine = select(Vouch).where(Vouch.attempt_id == attempt.id, Vouch.voucher_id == voucher.id)
    existing = session.scalar(mine)
    if existing is not None and existing.retracted_at is None:
        if note and note != existing.note:
            existing.note = note
            log_event(unit, "vouch_note", attempt.person, voucher, attempt, note)
        return VouchResult(attempt, count_vouches(session, attempt.id), repeat=True)
    if existing is not None:  # vouching again after an unvouch
        existing.retracted_at, existing.created_at, existing.note = None, unit.now, note
    else:
        session.add(Vouch(attempt_id=attempt.id, voucher=voucher, note=note, created_at=unit.now))
    attempt.last_activity_at, attempt.idle_reminded_at = unit.now, None
    session.flush()
    log_event(unit, "vouched", attempt.person, voucher, attempt, note)
    counted = counted_vouches(session, attempt.id)
    count = len(counted)
    _tell_trainee(
        unit, attempt, f"{voucher.name} vouched for you ({count}/{unit.rules.threshold})."
    )
    transition, pinged = settle(unit, attempt, voucher, counted)
    return VouchResult(attempt, count, transition=transition, pinged=pinged)


def unvouch(unit: Unit, voucher: Person | None, subject: Subject) -> VouchResult:
    """``!unvouch``: withdraw one's own vouch; below the threshold, ready goes back to training."""
    voucher = require(voucher, Role.HELPER)
    attempt = _attempt_for(unit, subject)
    existing = unit.session.scalar(
        select(Vouch).where(
            Vouch.attempt_id == attempt.id,
            Vouch.voucher_id == voucher.id,
            Vouch.retracted_at.is_(None),
        )
    )
    if existing is None:
        raise Nothing(f"you have not vouched for {subject.nick}")
    existing.retracted_at = unit.now
    unit.session.flush()
    log_event(unit, "unvouched", attempt.person, voucher, attempt)
    transition, _ = settle(unit, attempt, voucher)
    return VouchResult(attempt, count_vouches(unit.session, attempt.id), transition=transition)


def promote(unit: Unit, actor: Person | None, subject: Subject) -> Attempt:
    """``!promote``: ready → promoted, compare-and-set; the loser hears who won."""
    actor = require(actor, Role.COORDINATOR)
    person = subject.person
    if person is None:
        raise _not_trainee(unit, subject)
    attempt = open_attempt(unit.session, person.id) or latest_attempt(unit.session, person.id)
    if attempt is None or attempt.state in (REJECTED, WITHDRAWN, "closed"):
        if person.role >= Role.HELPER:
            raise AlreadyPromoted(f"{subject.nick} is already a {person.role.label}")
        raise _not_trainee(unit, subject)
    won = attempt.state == READY and compare_and_set(
        unit,
        attempt,
        (READY,),
        state=PROMOTED,
        state_since=unit.now,
        promoted_at=unit.now,
        promoted_by_id=actor.id,
        closed_at=unit.now,
        closed_by_id=actor.id,
    )
    if not won:
        if attempt.state == PROMOTED:
            raise AlreadyPromoted(_promoted_text(subject.nick, attempt))
        if attempt.state == ON_HOLD:
            raise WrongState(
                f"{subject.nick} is on hold ({attempt.hold_reason}): {unit.prefix}unhold first"
            )
        count = count_vouches(unit.session, attempt.id)
        raise WrongState(
            f"{subject.nick} is in training ({count}/{unit.rules.threshold} vouches), not ready"
        )
    person.role = max(person.role, Role.HELPER)
    log_event(unit, "promoted", person, actor, attempt)
    cancel_pings(unit, attempt)
    _tell_trainee(unit, attempt, f"You are now a helper (promoted by {actor.name}): welcome!")
    return attempt


def hold(unit: Unit, actor: Person | None, subject: Subject, reason: str) -> Attempt:
    """``!hold``: pause an attempt: no pings, no promotion, until ``!unhold``."""
    actor = require(actor, Role.COORDINATOR)
    attempt = _attempt_for(unit, subject)
    if attempt.state == ON_HOLD:
        by = attempt.held_by.name if attempt.held_by else "?"
        raise Nothing(f"{subject.nick} is already on hold (by {by}: {attempt.hold_reason})")
    compare_and_set(
        unit,
        attempt,
        (TRAINING, READY),
        state=ON_HOLD,
        state_since=unit.now,
        hold_reason=reason,
        held_by_id=actor.id,
    )
    log_event(unit, "held", attempt.person, actor, attempt, reason)
    cancel_pings(unit, attempt)
    return attempt


def unhold(unit: Unit, actor: Person | None, subject: Subject) -> tuple[Attempt, list[str]]:
    """``!unhold``: back to training (idle and SLA clocks restart), then ready if vouched."""
    actor = require(actor, Role.COORDINATOR)
    attempt = _attempt_for(unit, subject)
    if attempt.state != ON_HOLD:
        raise Nothing(f"{subject.nick} is not on hold ({attempt.state})")
    compare_and_set(
        unit,
        attempt,
        (ON_HOLD,),
        state=TRAINING,
        state_since=unit.now,
        hold_reason=None,
        held_by_id=None,
        ready_at=None,
        last_activity_at=unit.now,
        idle_reminded_at=None,
        sla_reminded_at=None,
        sla_reminders=0,
    )
    log_event(unit, "unheld", attempt.person, actor, attempt)
    _, pinged = settle(unit, attempt, actor)
    return attempt, pinged


def close(unit: Unit, attempt: Attempt, state: str, actor: Person | None, reason: str) -> bool:
    """End an open attempt (rejected, withdrawn, closed); the record stays as history.

    A hold stays on the row (``hold_reason``, ``held_by_id``): an attempt that ended while on
    hold says so for good, and the person's next attempt carries it (:mod:`.past`). Only
    ``!unhold`` clears a hold.
    """
    closed_by = actor.id if actor else None
    values = dict(closed_at=unit.now, closed_by_id=closed_by, close_reason=reason)
    if not compare_and_set(unit, attempt, OPEN, state=state, state_since=unit.now, **values):
        return False
    person = attempt.person
    if person.role == Role.TRAINEE:
        person.role = Role.NONE
    detail = reason
    if attempt.hold_reason is not None:  # ended while on hold
        by = attempt.held_by.name if attempt.held_by else "?"
        detail += f" (while on hold by {by}: {attempt.hold_reason})"
    log_event(unit, state, person, actor, attempt, detail)
    cancel_pings(unit, attempt)
    return True


def reject(unit: Unit, actor: Person | None, subject: Subject, reason: str) -> Attempt:
    """``!reject``: a coordinator ends the attempt, reason kept; ``!newhelper`` starts afresh."""
    actor = require(actor, Role.COORDINATOR)
    attempt = _attempt_for(unit, subject)
    close(unit, attempt, REJECTED, actor, reason)
    _tell_trainee(unit, attempt, f"Your training was closed by {actor.name}: {reason}")
    return attempt


def withdraw(unit: Unit, person: Person | None, reason: str | None = None) -> Attempt:
    """``!withdraw``: the trainee leaves the process; ``!newhelper`` starts afresh."""
    if person is None:
        raise NotIdentified("I can't tell who you are: log in to services first")
    attempt = open_attempt(unit.session, person.id, lock=True)
    if attempt is None:
        raise NotATrainee("you are not in training")
    close(unit, attempt, WITHDRAWN, person, reason or "withdrew")
    return attempt

"""Coordinators' mail addresses: set from the shell, or by themselves and confirmed by code.

Mail goes only to a *confirmed* address (``people.email``). From the shell
(``ircbot coordinator set-email NAME ADDR``) the address is confirmed as given: whoever runs
the bot's commands there is trusted with the team already. On IRC a coordinator says
``!email ADDR`` in private; the address waits (``email_pending``) while a code goes to it,
and counts once they answer ``!email confirm CODE``, in private too, within
:data:`CODE_HOURS`. So a typing slip, or someone else's address, never gets the team's mail.

The code has no link in it (nothing to click, nothing a mail scanner can follow): 8
characters from an alphabet without look-alikes (no 0/O, 1/I/L), about 40 bits, kept only as
its SHA-256, given up after :data:`CODE_TRIES` wrong answers.

Rules only, no IRC: the ``!email`` command and the shell command are in
:mod:`.contact_commands`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from .models import Person
from .store import Unit, log_event
from .workflow import Nothing, WorkflowError

__all__ = [
    "CODE_HOURS",
    "CODE_TRIES",
    "BadAddress",
    "clear_email",
    "confirm_email",
    "masked",
    "normal_address",
    "request_email",
    "set_digest",
    "set_email",
]

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_HOURS = 24
CODE_TRIES = 5
AGAIN_AFTER = dt.timedelta(minutes=1)  # between two codes: no mail-bombing through the bot
CONFIRM_KIND = "email_confirm"  # the out-of-band queue's kind for the code's mail

# A deliberately plain address: local@domain, no spaces, quotes, angle brackets, commas or
# controls (they would need quoting in a header, or hide a second recipient), a dot in the
# domain, ASCII only (beyond it a server must speak SMTPUTF8, which many do not).
_PLAIN = r"[^\s@<>,;:\"'()\[\]\\]"
_ADDRESS = re.compile(rf"{_PLAIN}{{1,64}}@{_PLAIN}+\.(?:(?!\.){_PLAIN})+")


class BadAddress(WorkflowError):
    """Not an address the bot will mail."""


def normal_address(text: str) -> str:
    """``text`` as an address to store, or :class:`BadAddress` saying why not."""
    address = text.strip()
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise BadAddress(f"{address[:60]!r} is not a mail address (name@example.org)")
    if not address.isascii() or not address.isprintable():
        raise BadAddress("a mail address here is printable ASCII (punycode for a domain)")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def masked(address: str | None) -> str:
    """An address as replies and logs show it: ``c***@example.org``."""
    if not address:
        return "none"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _clean(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def set_email(unit: Unit, person: Person, address: str | None, actor: Person | None) -> None:
    """The shell's (or a coordinator's own, once confirmed) address, confirmed as given;
    None removes it. Any code waiting is dropped."""
    person.email = normal_address(address) if address else None
    person.email_pending = person.email_code = person.email_code_until = None
    person.email_code_tries = 0
    log_event(unit, "email", person, actor, None, "set" if address else "removed")


def request_email(unit: Unit, person: Person, address: str) -> tuple[str, str]:
    """``!email ADDR``: remember the address as waiting, and return it and a new code.

    The caller mails the code (in the same transaction); a later request replaces this one.
    """
    pending = normal_address(address)
    until = person.email_code_until
    if until is not None and until - dt.timedelta(hours=CODE_HOURS) > unit.now - AGAIN_AFTER:
        raise WorkflowError("a code was mailed a moment ago: wait a minute before asking again")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    person.email_pending = pending
    person.email_code = _digest(code)
    person.email_code_until = unit.now + dt.timedelta(hours=CODE_HOURS)
    person.email_code_tries = 0
    return pending, code


def confirm_email(unit: Unit, person: Person, code: str) -> tuple[str | None, int]:
    """``!email confirm CODE``: the waiting address becomes the person's.

    Returns the address and 0; for a wrong code None and the tries left (0: the address
    waits no more). A wrong code is an answer, not a refusal: the try it uses up must be
    kept, else a refusal's rollback would give unlimited tries.
    """
    again = f"say {unit.prefix}email ADDRESS"
    if person.email_pending is None or person.email_code is None:
        raise Nothing(f"no address is waiting for a code: {again} first")
    until = person.email_code_until
    if until is not None and unit.now > until:
        raise WorkflowError(f"that code has expired ({CODE_HOURS} h): {again} again")
    if not hmac.compare_digest(_digest(_clean(code)), person.email_code):
        person.email_code_tries += 1
        left = max(0, CODE_TRIES - person.email_code_tries)
        if left == 0:
            person.email_pending = person.email_code = person.email_code_until = None
        return None, left
    address = person.email_pending
    person.email = address
    person.email_pending = person.email_code = person.email_code_until = None
    person.email_code_tries = 0
    log_event(unit, "email", person, person, None, "confirmed")
    return address, 0


def clear_email(unit: Unit, person: Person) -> None:
    """``!email off``: no more mail, and nothing waiting."""
    if person.email is None and person.email_pending is None:
        raise Nothing("you have no mail address set")
    set_email(unit, person, None, person)


def set_digest(unit: Unit, person: Person, on: bool) -> None:
    """Opt in to (or out of) the weekly digest, which goes to the confirmed address."""
    person.digest = on
    log_event(unit, "digest", person, person, None, "on" if on else "off")

r"""Bringing in the backlog: people who signed up and were never approved.

The original process apologised to "those who signed up and were never approved" and asked
them to speak up. Here a coordinator imports them from a CSV instead: each becomes a trainee
(told so when the bot next sees them), vouches already given can come along, and the same
readiness rule as live vouches decides who is ready and pings coordinators. Every row is
checked before it is used and any bad row stops the whole import (the caller rolls back),
naming the row, so an import is all or nothing.

Columns (header required, names case-insensitive; only ``account`` is required):

``account``
    the services account (account mode) or ``user@host`` (hostmask mode);
``nick``
    the nick they use, so coordinators can name them before they speak;
``chat_account``
    their account in the live-chat system;
``signed_up``
    when they signed up (ISO date or date-time, UTC), else the time of the import;
``vouchers``
    helpers who already vouched for them, by account or nick, separated by ``;`` or spaces;
    each at most once (``h1;H1`` is one helper named twice, an error, not one vouch).

The file comes from another system and its text ends up in IRC lines (every ping names the
trainee): a cell holding a control character (CTCP's ``\x01``, colour codes, NUL, CR/LF) or
an invisible format character (a right-to-left override) is refused, and a nick must be one
by the IRC grammar (RFC 2812: a letter or one of ``[]\`_^{|}`` first, then those, digits and
``-``), at most :data:`NICK_MAX` characters.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ircbot.casemapping import CaseMapping
from ircbot.identity import identity_key

from .models import Vouch
from .roles import Role
from .store import (
    TO_TRAINEE,
    AmbiguousNick,
    Unit,
    coordinators,
    find_by_name,
    log_event,
    open_attempt,
    person_by_key,
    ref_of,
    touch,
)
from .workflow import AlreadyOnTeam, register, settle

__all__ = [
    "COLUMNS",
    "NICK_MAX",
    "BacklogRow",
    "ImportReport",
    "ImportRowError",
    "import_backlog",
    "read_csv",
]

COLUMNS = ("account", "nick", "chat_account", "signed_up", "vouchers")
NICK_MAX = 32
"""Longer than any common server's NICKLEN (ngircd, InspIRCd, Solanum: 30 or 32)."""
_KEY = re.compile(r"^[^\s!,;]+$")
_NICK = re.compile(rf"^[A-Za-z\[\]\\`_^{{|}}][A-Za-z0-9\[\]\\`_^{{|}}-]{{0,{NICK_MAX - 1}}}$")
# Cc: C0/C1 controls (NUL, \x01 of CTCP, IRC colours and bold, CR, LF, tab, DEL);
# Cf: invisible format characters (bidi overrides, zero-width); Zl/Zp: line breaks.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


class ImportRowError(ValueError):
    """A row that cannot be imported; the message names it."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row


@dataclass(frozen=True)
class BacklogRow:
    row: int  # line number in the file, the header being line 1
    account: str
    nick: str | None = None
    chat_account: str | None = None
    signed_up: dt.datetime | None = None
    vouchers: tuple[str, ...] = ()


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"


def _date(text: str, row: int) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ImportRowError(row, f"signed_up {text!r} is not a date (YYYY-MM-DD)") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _unsafe(text: str) -> str | None:
    """The first control or format character in ``text``, as U+XXXX, else None."""
    for char in text:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def _no_nul(lines: Iterable[str]) -> Iterator[str]:
    """Refuse a NUL before the csv module does, with a traceback-free row number."""
    for number, line in enumerate(lines, start=1):
        if "\0" in line:
            raise ImportRowError(number, "a control character (U+0000) in the line")
        yield line


def _check_cells(values: dict[str, str], number: int) -> None:
    for column, text in values.items():
        found = _unsafe(text)
        if found:
            raise ImportRowError(number, f"a control character ({found}) in {column} {text!r}")
    nick = values.get("nick")
    if nick and not _NICK.match(nick):
        raise ImportRowError(
            number,
            f"nick {nick!r} is not an IRC nick (a letter or one of []\\`_^{{|}} first, "
            f"then those, digits or '-'; at most {NICK_MAX})",
        )


def _vouchers(text: str, number: int) -> tuple[str, ...]:
    names = tuple(v for v in re.split(r"[;\s]+", text) if v)
    seen: dict[str, str] = {}
    for name in names:
        key = identity_key(name)
        if key in seen:
            raise ImportRowError(number, f"voucher {name!r} is named twice ({seen[key]!r})")
        seen[key] = name
    return names


def read_csv(lines: Iterable[str], *, hostmask: bool) -> list[BacklogRow]:
    """Parse and check the file's shape; ImportRowError names the first bad row."""
    reader = csv.reader(_no_nul(lines))
    header = [h.strip().lower() for h in next(reader, [])]
    if "account" not in header:
        raise ImportRowError(1, f"the header must name an 'account' column (columns: {COLUMNS})")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ImportRowError(1, f"unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    rows: list[BacklogRow] = []
    for cells in reader:
        number = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ImportRowError(number, f"{len(cells)} fields, the header has {len(header)}")
        _check_cells(dict(zip(header, cells, strict=True)), number)
        values = {h: c.strip() for h, c in zip(header, cells, strict=True)}
        account = values["account"]
        if not account or not _KEY.match(account):
            raise ImportRowError(number, f"account {account!r} is empty or has spaces")
        if hostmask and "@" not in account:
            raise ImportRowError(number, f"account {account!r}: hostmask mode needs user@host")
        signed_up = values.get("signed_up")
        vouchers = values.get("vouchers", "")
        rows.append(
            BacklogRow(
                row=number,
                account=account,
                nick=values.get("nick") or None,
                chat_account=values.get("chat_account") or None,
                signed_up=_date(signed_up, number) if signed_up else None,
                vouchers=_vouchers(vouchers, number),
            )
        )
    return rows


def import_backlog(unit: Unit, rows: Sequence[BacklogRow]) -> ImportReport:
    """Make each row a trainee in the caller's transaction; raise on the first bad row."""
    session, fold = unit.session, CaseMapping.from_name(None).fold
    report = ImportReport()
    seen: dict[str, int] = {}
    for row in rows:
        key = identity_key(row.account)
        if key in seen:
            raise ImportRowError(row.row, f"{row.account} is already on row {seen[key]}")
        seen[key] = row.row
        helpers = []
        named: dict[int, str] = {}  # helper's person id -> the name the row gave
        for name in row.vouchers:
            try:
                helper = find_by_name(session, name)
            except AmbiguousNick as err:
                raise ImportRowError(row.row, str(err)) from None
            if helper is None:
                raise ImportRowError(row.row, f"unknown helper {name!r}")
            if helper.role < Role.HELPER:
                raise ImportRowError(row.row, f"{name} is not a helper ({helper.role.label})")
            if helper.id in named:  # an account and a nick of the same person
                raise ImportRowError(
                    row.row,
                    f"voucher {helper.name} is named twice ({named[helper.id]!r}, {name!r})",
                )
            named[helper.id] = name
            helpers.append(helper)
        existing = person_by_key(session, key)
        if existing is not None and open_attempt(session, existing.id) is not None:
            report.skipped.append(f"{row.account}: already in training")
            continue
        person = touch(unit, key, row.nick, fold(row.nick) if row.nick else None)
        try:
            registration = register(unit, person, row.chat_account)
        except AlreadyOnTeam:
            report.skipped.append(f"{row.account}: already a {person.role.label}")
            continue
        attempt = registration.attempt
        if row.signed_up is not None:
            attempt.registered_at = row.signed_up
        log_event(unit, "imported", person, None, attempt, f"backlog row {row.row}")
        for helper in helpers:
            if helper.id == person.id:
                raise ImportRowError(row.row, f"{row.account} cannot vouch for themselves")
            session.add(
                Vouch(attempt_id=attempt.id, voucher=helper, note="imported", created_at=unit.now)
            )
            session.flush()
            log_event(unit, "vouched", person, helper, attempt, "imported")
        unit.notifier.notify(
            person.identity,
            "You signed up for live chat: you are now a trainee. "
            "Ask in the channel to shadow chats; helpers vouch for you from there.",
            kind=TO_TRAINEE,
            ref=ref_of(attempt),
        )
        transition, _ = settle(unit, attempt, None)
        report.imported.append(person.name)
        if transition:
            report.ready.append(person.name)
    if report.imported:
        names = ", ".join(report.imported[:20])
        more = f" and {len(report.imported) - 20} more" if len(report.imported) > 20 else ""
        text = f"{len(report.imported)} people from the sign-up backlog are now trainees: "
        text += f"{names}{more}. See {unit.prefix}trainees"
        for coordinator in coordinators(session):
            unit.notifier.notify(coordinator.identity, text, kind="backlog")
    return report

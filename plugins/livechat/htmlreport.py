"""``ircbot report --html DIR``: the coordinators' view as a static site, and its rewrite job.

A folder any web server can serve, or a browser open from disk: ``index.html`` (the funnel,
the two waits against the 24-hour promise, who is ready now, the load on helpers and
coordinators), ``attempts.html`` and one page per attempt under ``attempt/`` for the open
attempts and those closed in the last :data:`PAGE_DAYS` days. No script, no font, nothing
from the network: the charts are inline SVG (see :mod:`.charts`) and the style is one file.

Everything a page says about people came from IRC users, so the templates go through Jinja2
with autoescaping on, and the numbers and names come from :mod:`.reportdata`, which never
hands out a host mask or an e-mail address. ``public`` leaves notes and reasons out.

The site is written into a new folder beside ``DIR`` and swapped in whole (an atomic
exchange of the two folders where Linux offers it), so a web server never serves half a
report; a folder that is neither empty nor an earlier report is refused, not replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import datetime as dt
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ircbot.context import JobContext

from . import charts, reportdata, views
from .config import LivechatConfig
from .config import rules as config_rules
from .declaration import plugin
from .models import ON_HOLD, READY, TRAINING
from .reportdata import scrub
from .store import ago, stamp

__all__ = [
    "PAGE_DAYS",
    "ReportError",
    "SiteStats",
    "maybe_rewrite",
    "read_only_engine",
    "rewrite_report",
    "write_report",
]

logger = logging.getLogger(__name__)

PAGE_DAYS = 90
RECENT_DAYS = 30
LOAD_DAYS = 90
MARKER = ".livechat-report"  # in every folder this module writes: safe to replace
TEMPLATES = Path(__file__).with_name("templates")


class ReportError(Exception):
    """The report cannot be written where asked (one line naming the folder)."""


@dataclass(frozen=True)
class SiteStats:
    """What one run wrote and how long it took (for the CLI's last line and the bench)."""

    attempt_pages: int
    index_seconds: float
    total_seconds: float


def environment() -> Environment:
    """Jinja with autoescaping on for every template: names and notes come from IRC."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["stamp"] = stamp
    env.filters["num"] = lambda n: f"{n:,}"
    env.filters["px"] = lambda v: f"{v:.1f}"
    env.filters["hours"] = _hours_text
    return env


def _hours_text(hours: float) -> str:
    """``9.5 h`` or, past two days, ``8.7 days``."""
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


# -- the database, read without holding anyone up ---------------------------------------------
def read_only_engine(url: str) -> Engine:
    """An engine for reading a consistent snapshot without blocking the bot's writes.

    The bot's own SQLite engine begins every transaction IMMEDIATE (it serialises writers);
    a report that reads for seconds must not take that lock. Here SQLite is opened read-only
    and each transaction is a plain deferred ``BEGIN``: with WAL it reads one snapshot and
    writers carry on. PostgreSQL gets a read-only REPEATABLE READ transaction: one snapshot.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or not path.exists():
            raise ReportError(f"no database file at {path}")
        engine = create_engine(
            "sqlite://",
            creator=lambda: __import__("sqlite3").connect(
                f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False
            ),
        )

        @event.listens_for(engine, "connect")
        def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's

        @event.listens_for(engine, "begin")
        def _deferred(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed,
        isolation_level="REPEATABLE READ",
        execution_options={"postgresql_readonly": True},
    )


# -- the folder ---------------------------------------------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, bytes(a), at_fdcwd, bytes(b), rename_exchange) == 0
    return bool(done)


def _check_target(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ReportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ReportError(f"{out} is not empty and holds no earlier report: not replacing it")


def _swap_in(new: Path, out: Path) -> None:
    """Put the finished folder ``new`` where ``out`` is, never leaving half a site there."""
    if not out.exists():
        new.rename(out)
        return
    if _exchange(new, out):
        shutil.rmtree(new)  # now the old report
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    out.rename(old)  # a moment without a folder: only where the exchange is missing
    new.rename(out)
    shutil.rmtree(old)


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        yield new
        new.chmod(0o755)  # mkdtemp's 0700 would hide the site from the web server
        _swap_in(new, out)
    finally:
        if new.exists():
            shutil.rmtree(new)


# -- the pages ----------------------------------------------------------------------------------
def _safe(name: str | None) -> str:
    """A name from a view (nick, else identity): never a host mask."""
    return name if name and "@" not in name else "(no nick)"


def _index_context(
    session: Session, rules: LivechatConfig, now: dt.datetime, hostmask: bool
) -> dict[str, Any]:
    promise = rules.sla_hours
    recent = now - dt.timedelta(days=RECENT_DAYS)
    load_since = now - dt.timedelta(days=LOAD_DAYS)
    whole, to_ready = reportdata.history(session, reportdata.READY_BINS, promise)
    funnels = {"all": whole, "recent": reportdata.funnel(session, recent)}
    to_promoted = reportdata.histogram(session, "to_promoted", reportdata.DELAY_BINS, promise)
    total, overdue, ready = views.ready_list(session, rules, now)
    helpers, n_helpers, n_vouches = reportdata.vouches_per_helper(
        session, load_since, hostmask=hostmask
    )
    coordinators = reportdata.promotions_per_coordinator(session, load_since, hostmask=hostmask)
    counts = views.counts(session)
    promise_text = f"{promise:g} h promise"
    return {
        "funnels": funnels,
        "funnel_charts": {k: _funnel_chart(k, f) for k, f in funnels.items()},
        "waits": [
            (
                "Registration to ready",
                to_ready,
                charts.columns(
                    "Time from registration to ready",
                    to_ready.labels,
                    to_ready.counts,
                    marker_after=to_ready.promise_index,
                    marker_text=promise_text,
                    split_colours=False,
                ),
            ),
            (
                "Ready to promoted",
                to_promoted,
                charts.columns(
                    "Time from ready to promoted",
                    to_promoted.labels,
                    to_promoted.counts,
                    marker_after=to_promoted.promise_index,
                    marker_text=promise_text,
                ),
            ),
        ],
        "ready": [
            {
                "id": v.attempt.id,
                "name": _safe(v.nick),
                "tally": v.tally(),
                "vouchers": [_safe(x.name) for x in v.counted],
                "chat_account": reportdata.scrub(v.attempt.chat_account),
                "ready_at": v.attempt.ready_at,
                "waiting": ago(now, v.attempt.ready_at),
                "overdue": v.overdue,
            }
            for v in ready
        ],
        "ready_total": total,
        "overdue_total": overdue,
        "counts": counts,
        "helpers": helpers,
        "helpers_chart": charts.hbars(
            f"Vouches per helper, last {LOAD_DAYS} days",
            [(h.name, [charts.Segment(h.count, "seg-vouch", "vouches")]) for h in helpers],
        ),
        "n_helpers": n_helpers,
        "n_vouches": n_vouches,
        "coordinators": coordinators,
        "coordinators_chart": charts.hbars(
            "Promotions per coordinator",
            [
                (
                    c.name,
                    [
                        charts.Segment(c.recent, "seg-recent", f"in the last {LOAD_DAYS} days"),
                        charts.Segment(c.count - c.recent, "seg-earlier", "earlier"),
                    ],
                )
                for c in coordinators
            ],
        ),
        "promise": promise,
        "recent_days": RECENT_DAYS,
        "load_days": LOAD_DAYS,
        "states": {"ready": READY, "training": TRAINING, "on_hold": ON_HOLD},
    }


def _funnel_chart(which: str, f: reportdata.Funnel) -> charts.Chart:
    title = "Funnel, whole history" if which == "all" else f"Funnel, last {RECENT_DAYS} days"
    return charts.hbars(
        title,
        [
            (
                "Registered",
                [
                    charts.Segment(f.ready, "seg-ready", "reached ready"),
                    charts.Segment(f.training, "seg-open", "still training or on hold"),
                    charts.Segment(f.dropped_before_ready, "seg-dropped", "left before ready"),
                ],
            ),
            (
                "Reached ready",
                [
                    charts.Segment(f.promoted, "seg-promoted", "promoted"),
                    charts.Segment(f.waiting, "seg-open", "waiting or on hold"),
                    charts.Segment(f.dropped_after_ready, "seg-dropped", "left after ready"),
                ],
            ),
            ("Promoted", [charts.Segment(f.promoted, "seg-promoted", "promoted")]),
        ],
        label_width=110,
        row_height=40,
    )


def _page_context(
    page: reportdata.AttemptPage, now: dt.datetime, public: bool, hostmask: bool
) -> dict[str, Any]:
    t = page.view.attempt
    vouches = [
        dataclasses.replace(v, name=_safe(v.name), note=None if public else scrub(v.note))
        for v in page.view.vouches
    ]
    reason = None if public else reportdata.scrub(t.close_reason)
    return {
        "page": page,
        "t": t,
        "vouches": vouches,
        "counted": sum(v.counts for v in vouches),
        "threshold": page.view.threshold,
        "overdue": page.view.overdue,
        "since": ago(now, t.state_since),
        "waiting": ago(now, t.ready_at) if t.state == READY else None,
        "promoted_by": page.person_name(t.promoted_by, hostmask) if t.promoted_at else None,
        "held_by": page.person_name(t.held_by, hostmask) if t.held_by_id else None,
        "hold_reason": None if public else reportdata.scrub(t.hold_reason),
        "closed_by": page.person_name(t.closed_by, hostmask) if t.closed_at else None,
        "close_reason": reason,
        "chat_account": reportdata.scrub(t.chat_account),
    }


def write_report(
    session: Session,
    rules: LivechatConfig,
    now: dt.datetime,
    out: Path,
    *,
    public: bool = False,
    hostmask: bool = False,
    pages: bool = True,
) -> SiteStats:
    """Write the whole site to ``out`` (replacing an earlier report there) and say what."""
    started = time.perf_counter()
    env = environment()
    since = now - dt.timedelta(days=PAGE_DAYS)
    common = {"generated": now, "public": public, "page_days": PAGE_DAYS}
    with _staging(out) as site:
        (site / MARKER).write_text("written by ircbot report --html\n", encoding="utf-8")
        shutil.copyfile(TEMPLATES / "style.css", site / "style.css")
        context = _index_context(session, rules, now, hostmask)
        index = env.get_template("index.html").render(root="", **common, **context)
        (site / "index.html").write_text(index, encoding="utf-8")
        index_seconds = time.perf_counter() - started
        written = 0
        if pages:
            (site / "attempt").mkdir()
            page_template = env.get_template("attempt.html")

            def rows() -> Iterator[dict[str, Any]]:
                """Each attempt's page written as the listing reaches its row."""
                nonlocal written
                for page in reportdata.attempt_pages(
                    session, rules, now, since, hostmask=hostmask, public=public
                ):
                    ctx = _page_context(page, now, public, hostmask)
                    html = page_template.render(root="../", **common, **ctx)
                    (site / "attempt" / f"{page.view.attempt.id}.html").write_text(
                        html, encoding="utf-8"
                    )
                    written += 1
                    yield ctx

            listing = env.get_template("attempts.html")
            with (site / "attempts.html").open("w", encoding="utf-8") as handle:
                for chunk in listing.generate(root="", rows=rows(), **common):
                    handle.write(chunk)
    return SiteStats(written, index_seconds, time.perf_counter() - started)


# -- the bot's periodic rewrite ----------------------------------------------------------------
_RUNNING = "report.thread"
_LAST = "report.last"


def maybe_rewrite(
    memory: dict[str, Any], engine_url: str, rules: LivechatConfig, clock: Any, *, hostmask: bool
) -> threading.Thread | None:
    """Start a rewrite of ``[livechat] report_dir`` if ``report_every`` minutes have passed.

    It runs on a thread of its own with a read-only engine: a report of a large history
    takes seconds, which the bot's event loop must not wait for, and a read must not hold
    the write lock the bot's commands take. At most one rewrite runs at a time.
    """
    if not rules.report_dir:
        return None
    running = memory.get(_RUNNING)
    if running is not None and running.is_alive():
        return None
    last = memory.get(_LAST)
    if last is not None and clock.monotonic() - last < rules.report_every * 60:
        return None
    memory[_LAST] = clock.monotonic()
    now = clock.now()
    out = Path(rules.report_dir)

    def run() -> None:
        engine = read_only_engine(engine_url)
        try:
            with Session(engine) as session, session.begin():
                stats = write_report(
                    session, rules, now, out, public=rules.report_public, hostmask=hostmask
                )
            logger.info(
                "report written to %s: %d attempt pages in %.1f s",
                out,
                stats.attempt_pages,
                stats.total_seconds,
            )
        except Exception:
            logger.exception("report to %s failed", out)
        finally:
            engine.dispose()

    thread = threading.Thread(target=run, name="livechat-report", daemon=True)
    memory[_RUNNING] = thread
    thread.start()
    return thread


@plugin.job(every=60.0)
def rewrite_report(ctx: JobContext) -> None:
    """Rewrite ``[livechat] report_dir`` every ``report_every`` minutes (if set)."""
    rules = config_rules(ctx.config)
    if not rules.report_dir:
        return
    engine = ctx.session_factory.kw["bind"]
    # The job cannot see [bot] identity; identities shaped like user@host are never shown
    # whatever this flag says (see reportdata.shown_name), so account mode is safe here.
    maybe_rewrite(
        ctx.memory,
        engine.url.render_as_string(hide_password=False),
        rules,
        ctx.clock,
        hostmask=False,
    )

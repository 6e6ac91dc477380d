"""The database: engine, sessions, the declarative base every table uses, and migrations.

SQLite is the embedded default and needs settings SQLAlchemy does not make for us: WAL
(readers never block the writer, nor the writer them), ``foreign_keys=ON`` (off by default in
SQLite, so a vouch could point at nobody) and a busy timeout. PostgreSQL is used by URL
through psycopg 3, with a ``lock_timeout`` and a ``statement_timeout`` set on every
connection. The schema comes only from the Alembic migrations: the core's in ``alembic/`` and
one branch per enabled plugin (``create_all`` would let the code and the migrations drift
apart).

**Never a stall on a lock.** The bot serves everyone from one thread, so every wait for a
lock is a wait for everyone. Hence three rules:

- *Reads take no lock.* :func:`reading` begins a deferred transaction (plain ``BEGIN``): on
  SQLite in WAL mode it reads a snapshot while another process holds the write lock.
- *A unit that knows it writes takes the write lock first.* :func:`transaction` begins
  ``BEGIN IMMEDIATE`` on SQLite, so its reads and its writes are one serialised unit and two
  vouches arriving at once give one ``ready`` transition. The CLI's writing commands, jobs
  and the outbox's delivery marks use it.
- *A command, which mostly reads, is optimistic* (:func:`optimistic`): it runs first in a
  deferred transaction. If it then writes, SQLite upgrades the read snapshot to the write
  lock; that upgrade fails at once with ``SQLITE_BUSY`` (SQLite gives a reader no busy wait
  on upgrade: two readers each waiting for the other to upgrade would deadlock) when another
  connection holds the lock, or with ``SQLITE_BUSY_SNAPSHOT`` when another connection has
  committed since the snapshot was read (its reads may be stale). Either way the whole
  unit is rolled back, so nothing is half-written, and run once more from the start in
  ``BEGIN IMMEDIATE``, which waits at most ``[database] busy_timeout``. Retrying the whole
  unit, rather than beginning every command IMMEDIATE, is what lets ``!status`` answer while
  another process writes; the price is that a writing command runs its handler twice when
  it loses a race, which is harmless because a handler's only effects are its transaction
  and the replies it collects in a fresh context.

The waits are short (``[database] busy_timeout`` 2 s on SQLite; ``lock_timeout`` 2 s and
``statement_timeout`` 5 s on PostgreSQL). When one runs out the driver raises, the unit is
rolled back, and :func:`is_busy` tells that apart from a bug: the person is told "the
database is busy, try again in a moment" (:class:`DatabaseBusy`).
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from ircbot.errors import DatabaseBusy, DatabaseUnavailable

__all__ = [
    "WRITE",
    "Base",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "UTCDateTime",
    "begin",
    "is_busy",
    "make_engine",
    "make_session_factory",
    "migrate",
    "migrations_path",
    "optimistic",
    "reading",
    "transaction",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The base of every table, core and plugins alike (one naming convention for all)."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone; we store UTC, naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC time")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


#: A session execution option: this unit writes, so on SQLite it begins IMMEDIATE.
WRITE = "ircbot_write"
_LIMITS = "ircbot_busy_timeout"  # an engine execution option: the SQLite busy timeout, seconds
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (extended codes keep them in the low byte)
# lock_not_available (lock_timeout), query_canceled (statement_timeout), serialization
# failure, deadlock detected: another transaction was in the way, nothing is wrong with ours.
_PG_BUSY = {"55P03", "57014", "40001", "40P01"}


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a lock wait that ran out."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, DatabaseBusy):
            return True
        orig = getattr(current, "orig", None) if isinstance(current, DBAPIError) else current
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY:
            return True
        if getattr(orig, "sqlstate", None) in _PG_BUSY:
            return True
        current, seen = current.__cause__, seen + 1
    return False


def make_engine(
    url: str,
    *,
    busy_timeout: float = 2.0,
    lock_timeout: float = 2.0,
    statement_timeout: float = 5.0,
    on_lock_wait: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url`` with the settings each backend needs to be safe under load.

    ``busy_timeout`` (SQLite) and ``lock_timeout`` (PostgreSQL) bound a wait for another
    transaction's lock, ``statement_timeout`` (PostgreSQL) any one statement, in seconds.
    ``on_lock_wait`` is called when a writing unit finds the SQLite write lock taken, before
    it waits (the shell says "waiting for the database lock...").
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": busy_timeout, "check_same_thread": False}, **kwargs
        )
        engine.update_execution_options(**{_LIMITS: busy_timeout})
        memory = parsed.database in (None, "", ":memory:")
        busy_ms = int(busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see SQLAlchemy's
            # "Serializable isolation / Savepoints / Transactional DDL" notes for pysqlite).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Deferred unless the unit writes (see the module's docstring).
            if not conn.get_execution_options().get(WRITE):
                conn.exec_driver_sql("BEGIN")
                return
            if on_lock_wait is None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            raw = conn.connection.driver_connection
            try:
                raw.execute("PRAGMA busy_timeout=0")
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            finally:
                raw.execute(f"PRAGMA busy_timeout={busy_ms}")
            on_lock_wait()
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
    lock_ms, statement_ms = int(lock_timeout * 1000), int(statement_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _pg_timeouts(dbapi_conn: Any, _record: Any) -> None:
        # Per connection, not in the URL: the URL's own ``options`` stay the operator's.
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {lock_ms}")
            cursor.execute(f"SET statement_timeout = {statement_ms}")
        dbapi_conn.commit()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects readable after commit (replies are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def begin(factory: sessionmaker[Session], *, write: bool) -> Session:
    """A session in a transaction: ``write`` takes SQLite's write lock at once (IMMEDIATE),
    else the transaction is deferred and reads without a lock. On PostgreSQL both are the
    same (its locks are per row, taken by the statements that need them)."""
    session = factory(execution_options={WRITE: True}) if write else factory()
    session.begin()  # BEGIN (IMMEDIATE) is sent with the first statement, not before
    return session


@contextlib.contextmanager
def _unit(factory: sessionmaker[Session], write: bool) -> Iterator[Session]:
    session = begin(factory, write=write)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def transaction(factory: sessionmaker[Session]) -> contextlib.AbstractContextManager[Session]:
    """One unit of work that writes: commit if the block finishes, roll back if it raises.

    On SQLite it holds the write lock from its first statement, so what it read is still
    true when it writes.
    """
    return _unit(factory, True)


def reading(factory: sessionmaker[Session]) -> contextlib.AbstractContextManager[Session]:
    """One unit of work that only reads: a deferred transaction, no lock taken or waited for.

    Load what is needed, leave the block, then print or send: never hold it while doing so.
    """
    return _unit(factory, False)


def _busy_wait(factory: sessionmaker[Session]) -> float | None:
    """The SQLite busy timeout of the factory's engine, seconds (None: not SQLite)."""
    bind = factory.kw.get("bind")
    options = bind.get_execution_options() if isinstance(bind, Engine) else {}
    return options.get(_LIMITS)


def optimistic(factory: sessionmaker[Session], run: Callable[[bool], _T]) -> _T:
    """Run a unit ``run(write)`` deferred first; once more with the write lock if it must.

    ``run`` opens its own session (``write`` says how, see :func:`begin`) and commits or
    rolls it back itself. A deferred attempt that could not upgrade to the SQLite write lock
    (busy at once: another writer, or a stale snapshot) is run again from the start with the
    lock taken first. An attempt that has already waited out the busy timeout is not run
    again: the person would wait twice. A lock wait that runs out raises
    :class:`DatabaseBusy`; any other error is raised as it is.
    """
    wait = _busy_wait(factory)
    started = time.monotonic()
    try:
        return run(False)
    except Exception as exc:
        if not is_busy(exc):
            raise
        if wait is None or time.monotonic() - started >= wait / 2:
            raise DatabaseBusy(str(exc).partition("\n")[0]) from exc
        logger.debug("a command could not upgrade to the write lock; running it again")
    try:
        return run(True)
    except Exception as exc:
        if is_busy(exc) and not isinstance(exc, DatabaseBusy):
            raise DatabaseBusy(str(exc).partition("\n")[0]) from exc
        raise


def migrations_path() -> Path:
    """Where the core's Alembic environment is: installed package, else the checkout's
    ``alembic/`` (its ``versions/`` hold the core's own tables only)."""
    try:
        import ircbot_migrations  # type: ignore[import-not-found,unused-ignore]

        return Path(next(iter(ircbot_migrations.__path__)))
    except ImportError:
        return Path(__file__).resolve().parent.parent / "alembic"


def _alembic_config(engine: Engine, extra_locations: Sequence[Path]) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    path = migrations_path()
    # ConfigParser values: "%" is its interpolation sign, hence doubled.
    cfg.set_main_option("script_location", str(path).replace("%", "%%"))
    locations = [str(path / "versions"), *(str(p) for p in extra_locations)]
    cfg.set_main_option("path_separator", "os")  # a folder's name may hold a space
    cfg.set_main_option("version_locations", os.pathsep.join(locations).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def _script_heads(locations: Sequence[Path]) -> set[str] | None:
    """The newest revisions, read from the migration files without importing Alembic.

    Alembic costs ~10 MB and ~100 ms to import; on an ordinary start the database is already
    current and it is not needed. Each file's literal ``revision``/``down_revision`` are read
    with :mod:`ast`; anything unusual returns None, and Alembic itself is asked.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for folder in locations:
        for path in Path(folder).glob("*.py"):
            values: dict[str, Any] = {}
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError):
                return None
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                        try:
                            values[target.id] = ast.literal_eval(node.value)
                        except ValueError:
                            return None
            if not isinstance(values.get("revision"), str):
                return None
            revisions.add(values["revision"])
            down = values.get("down_revision")
            parents.update([down] if isinstance(down, str) else down or ())
    return revisions - parents


def is_current(engine: Engine, extra_locations: Sequence[Path] = ()) -> bool:
    """Whether the core and the given plugin branches are at their newest migration: one
    small query, no Alembic import. Rows of other branches (plugins not enabled) are
    ignored: they are not ours to upgrade."""
    heads = _script_heads([migrations_path() / "versions", *extra_locations])
    if not heads:
        return False
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return heads <= current


def migrate(engine: Engine, extra_locations: Sequence[Path] = ()) -> None:
    """Bring the core and the branches in ``extra_locations`` (the enabled plugins'
    ``migrations`` folders) to their newest migration, in one transaction. The tables and
    version rows of any other branch are left as they are (see ``alembic/env.py``).

    It is the first thing to touch the database, so it is where an unreachable one is told
    (:class:`DatabaseUnavailable`).
    """
    try:
        if is_current(engine, extra_locations):
            return
    except OperationalError as exc:
        raise DatabaseUnavailable(engine, exc) from None
    from alembic import command

    logger.info("upgrading database schema")
    command.upgrade(_alembic_config(engine, extra_locations), "heads")

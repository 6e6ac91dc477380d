"""The database: engine, sessions, the declarative base every table uses, and migrations.

SQLite is the embedded default and needs three settings SQLAlchemy does not make for us:
WAL (outside readers, such as a backup or the sqlite3 shell, never block the bot's writes),
``foreign_keys=ON`` (off by default in SQLite, so a vouch could point at
nobody) and a busy timeout (two writers wait for each other instead of failing at once).
Every transaction of ours begins IMMEDIATE, reads included: the bot's transactions are a few
milliseconds long and run one at a time, and serialising them is what makes two vouches
arriving at once give one ``ready`` transition; a CLI command waits its turn behind them.
PostgreSQL is used by URL through psycopg 3. The schema comes only from the Alembic
migrations: the core's in ``alembic/`` and one branch per enabled plugin (``create_all``
would let the code and the migrations drift apart).
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "DatabaseUnavailable",
    "UTCDateTime",
    "make_engine",
    "make_session_factory",
    "migrate",
    "migrations_path",
    "transaction",
]

logger = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DatabaseUnavailable(Exception):
    """The database cannot be opened: one line naming it (password masked) and the reason.

    A server that is down, a wrong host or password, an SQLite file in a folder that does
    not exist: what the operator must fix, not a bug, so no traceback.
    """

    def __init__(self, engine: Engine, error: OperationalError) -> None:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().partition("\n")[0]
        super().__init__(f"cannot open the database {url}: {reason}")


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


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings each backend needs to be safe under load."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        memory = parsed.database in (None, "", ":memory:")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see SQLAlchemy's
            # "Serializable isolation / Savepoints / Transactional DDL" notes for pysqlite).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # BEGIN IMMEDIATE takes the write lock at the start, so two concurrent commands
            # serialise instead of one failing with "database is locked" on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects readable after commit (replies are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block finishes, roll back if it raises."""
    with factory() as session, session.begin():
        yield session


def migrations_path() -> Path:
    """Where the core's Alembic environment is: installed package, else the checkout's
    ``alembic/`` (its ``versions/`` hold the core's own tables only)."""
    try:
        import ircbot_migrations

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

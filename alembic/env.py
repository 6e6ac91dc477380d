"""Alembic environment: run migrations on the engine the bot hands over, or on a URL.

The core's history (``alembic/versions``, branch ``core``) holds the core's tables only. Each
plugin brings a branch of its own (``Plugin(..., migrations=Path(...))``); ``ircbot db
upgrade`` and ``ircbot run`` pass the core's folder and those of the ENABLED plugins as
``version_locations``, and their engine in ``config.attributes``. Alembic keeps one row per
branch head in ``alembic_version``; a row of a branch it was not given (a disabled or removed
plugin) is set aside for the upgrade and put back unchanged in the same transaction, so that
plugin's tables and its place in the history stay as they were.

For developers writing a new migration, ``alembic -c alembic.ini revision --autogenerate
--head livechat@head -m "..."`` works too: the URL then comes from ``IRCBOT_DATABASE__URL``
(default ``sqlite:///ircbot.db``), and every installed plugin is loaded, which is what
registers its models on ``Base.metadata``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

# The core's tables are registered on Base.metadata by importing their modules.
import ircbot.outbound
import ircbot.outbox  # noqa: F401
from alembic import context
from ircbot.storage import Base, make_engine

logger = logging.getLogger("ircbot.migrations")

VERSION_TABLE = "alembic_version"

LEGACY_HEADS = {"0002_livechat": "0001_outbox"}
"""Heads of the old linear history (before plugins had branches), and the core revision
each stood on. ``0002_livechat`` was the core's second revision; it now opens the livechat
branch under the same id. A database made then has that one row and no core row: the core
row is put back, and Alembic sees both branches where they are."""

config = context.config
target_metadata = Base.metadata


def _load_installed_plugins() -> None:
    """Import every installed plugin, so that autogenerate sees all their tables (a table
    whose model is not loaded would be proposed for dropping)."""
    from ircbot.loading import installed

    found = installed()
    if found.broken:  # its tables would be proposed for dropping
        raise RuntimeError(f"plugins that did not load: {found.broken}")


def _version_rows(conn: Connection) -> list[str]:
    if not inspect(conn).has_table(VERSION_TABLE):
        return []
    return list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def _adopt_legacy_head(conn: Connection, rows: Sequence[str]) -> None:
    """A database at the old linear head gets back the core row that head implied."""
    if len(rows) == 1 and rows[0] in LEGACY_HEADS:
        core = LEGACY_HEADS[rows[0]]
        logger.info("database from the linear history: %s is on core %s", rows[0], core)
        conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": core})


def _set_aside_foreign_rows(conn: Connection, known: set[str]) -> list[str]:
    """Remove (to put back later) the rows of branches not being migrated: Alembic refuses
    to run while the version table names a revision it has no script for."""
    foreign = [row for row in _version_rows(conn) if row not in known]
    for row in foreign:
        conn.execute(text(f"DELETE FROM {VERSION_TABLE} WHERE version_num = :v"), {"v": row})
    if foreign:
        logger.info("left as they are (plugin not enabled): revisions %s", ", ".join(foreign))
    return foreign


def _put_back(conn: Connection, rows: Sequence[str]) -> None:
    for row in rows:
        conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": row})


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        _load_installed_plugins()
        engine = make_engine(os.environ.get("IRCBOT_DATABASE__URL", "sqlite:///ircbot.db"))
    known = {script.revision for script in context.script.walk_revisions()}
    # One transaction for the whole upgrade, ours, begun before Alembic sees the connection:
    # Alembic then runs inside it instead of committing after each revision (its default on
    # SQLite), so a failing revision leaves the schema and the version rows as they were.
    with engine.connect() as connection, connection.begin():
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        _adopt_legacy_head(connection, _version_rows(connection))
        foreign = _set_aside_foreign_rows(connection, known)
        context.run_migrations()
        _put_back(connection, foreign)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; pass a database")
run_migrations()

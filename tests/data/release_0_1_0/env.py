"""Alembic environment: run migrations on the engine the bot hands over, or on a URL.

``ircbot db upgrade`` and ``ircbot run`` pass their engine in ``config.attributes``. For
developers writing a new migration, ``alembic -c alembic.ini revision --autogenerate`` works
too: the URL then comes from ``IRCBOT_DATABASE__URL`` (default ``sqlite:///ircbot.db``).
"""

from __future__ import annotations

import contextlib
import os

import ircbot.outbox  # noqa: F401  (registers the core tables on Base.metadata)
from alembic import context
from ircbot.storage import Base, make_engine

with contextlib.suppress(ImportError):  # the bundled plugin's tables, for autogenerate
    import ircbot_plugins.livechat.models  # noqa: F401

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(os.environ.get("IRCBOT_DATABASE__URL", "sqlite:///ircbot.db"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; pass a database")
run_migrations()

"""A real database of either backend for a test: a SQLite file, or a PostgreSQL database.

PostgreSQL runs at 127.0.0.1:5432 with trust auth; each test that asks for it gets a
database of its own under a unique name, dropped (connections forced closed) at the end, and
is skipped when no server answers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""``@pytest.fixture(params=BACKENDS)``: one run per backend."""


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_database(prefix: str = "test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database by URL, dropped when the block ends."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(backend: str, folder: Path, prefix: str = "test") -> Iterator[str]:
    """For a fixture to ``yield from``: an empty database of ``backend``, by URL."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{prefix}.db'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with postgres_database(prefix) as url:
        yield url

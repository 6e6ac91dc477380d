"""Fixtures for the attacks tried against the bot: the livechat fixtures, shared.

The databases (a SQLite file and a PostgreSQL database, both migrated), the clock, the rules
and the team are those of ``tests/livechat``, imported rather than copied so both folders
test against the same setup.
"""

from __future__ import annotations

from tests.livechat.conftest import Database, Team, clock, db, rules, team  # noqa: F401

__all__ = ["Database", "Team"]

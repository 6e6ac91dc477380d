"""Fixtures for the livechat workflow: a real database on both backends, a clock, a team.

``db`` is parametrised: a SQLite file and a PostgreSQL database (127.0.0.1:5432, user
postgres, trust auth) created under a unique name and dropped at teardown. Both are brought
to head by ``ircbot.storage.migrate``, exactly as the bot does, never by ``create_all``.

``team`` speaks for the people in a test so that it reads like the conversation it stands
for: ``team.register("alice")`` then ``team.vouch("bob", "alice")``. People are named by a
key that is at once their identity, nick and folded nick; each call is one transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ircbot_plugins.livechat import plugin as livechat
from ircbot_plugins.livechat import team as team_rules
from ircbot_plugins.livechat import workflow
from ircbot_plugins.livechat.config import LivechatConfig
from ircbot_plugins.livechat.models import Event, Person
from ircbot_plugins.livechat.roles import Role
from ircbot_plugins.livechat.store import (
    OutboxNotifier,
    Subject,
    Unit,
    latest_attempt,
    person_by_key,
    touch,
)
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ircbot.clock import ManualClock
from ircbot.outbox import OutboxMessage
from ircbot.storage import make_engine, make_session_factory, migrate, transaction
from tests.support.postgres import BACKENDS, database_url


@dataclass
class Database:
    backend: str
    url: str
    engine: Engine
    factory: sessionmaker[Session]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: a SQLite file, or a fresh PostgreSQL database."""
    for url in database_url(request.param, tmp_path, "livechat"):
        engine = make_engine(url)
        try:
            migrate(engine, [livechat.migrations])
            yield Database(request.param, url, engine, make_session_factory(engine))
        finally:
            engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def rules() -> LivechatConfig:
    return LivechatConfig(
        threshold=2, sla_hours=24, first_reminder_hours=24, reminder_hours=12, idle_days=14
    )


class Team:
    """The people of a test, speaking to the workflow one transaction at a time."""

    def __init__(self, db: Database, clock: ManualClock, rules: LivechatConfig) -> None:
        self.db, self.clock, self.rules = db, clock, rules

    @contextlib.contextmanager
    def unit(self, factory: sessionmaker[Session] | None = None) -> Iterator[Unit]:
        now = self.clock.now()
        with transaction(factory or self.db.factory) as session:
            yield Unit(session, now, self.rules, OutboxNotifier(session, now))

    def add(self, name: str, role: Role = Role.NONE) -> None:
        """``name`` exists (has spoken to the bot) with ``role``."""
        with self.unit() as u:
            person = touch(u, name, name, name)
            if role != person.role:
                team_rules.set_role(u, person, role, None, manual=True)

    @staticmethod
    def who(u: Unit, name: str | None) -> Person | None:
        return None if name is None else person_by_key(u.session, name)

    def subject(self, u: Unit, name: str) -> Subject:
        return Subject(name, person_by_key(u.session, name))

    # -- what people say -----------------------------------------------------------------
    def register(self, name: str, chat_account: str | None = None) -> workflow.Registration:
        with self.unit() as u:
            return workflow.register(u, touch(u, name, name, name), chat_account)

    def vouch(self, voucher: str | None, name: str, note: str | None = None) -> Any:
        with self.unit() as u:
            return workflow.vouch(u, self.who(u, voucher), self.subject(u, name), note)

    def unvouch(self, voucher: str, name: str) -> Any:
        with self.unit() as u:
            return workflow.unvouch(u, self.who(u, voucher), self.subject(u, name))

    def promote(self, actor: str, name: str) -> Any:
        with self.unit() as u:
            return workflow.promote(u, self.who(u, actor), self.subject(u, name))

    def hold(self, actor: str, name: str, reason: str) -> Any:
        with self.unit() as u:
            return workflow.hold(u, self.who(u, actor), self.subject(u, name), reason)

    def unhold(self, actor: str, name: str) -> Any:
        with self.unit() as u:
            return workflow.unhold(u, self.who(u, actor), self.subject(u, name))

    def reject(self, actor: str, name: str, reason: str) -> Any:
        with self.unit() as u:
            return workflow.reject(u, self.who(u, actor), self.subject(u, name), reason)

    def withdraw(self, name: str) -> Any:
        with self.unit() as u:
            return workflow.withdraw(u, self.who(u, name))

    def change_role(self, actor: str | None, which: str, action: str, name: str) -> Any:
        with self.unit() as u:
            return team_rules.change_role(
                u, self.who(u, actor), self.subject(u, name), which, action
            )

    # -- what the database says ----------------------------------------------------------
    def state(self, name: str) -> str | None:
        with self.unit() as u:
            person = person_by_key(u.session, name)
            attempt = latest_attempt(u.session, person.id) if person else None
            return attempt.state if attempt else None

    def role(self, name: str) -> Role:
        with self.unit() as u:
            return person_by_key(u.session, name).role

    def outbox(self, kind: str | None = None, *, pending: bool = True) -> list[OutboxMessage]:
        with self.unit() as u:
            stmt = select(OutboxMessage).order_by(OutboxMessage.id)
            if kind:
                stmt = stmt.where(OutboxMessage.kind == kind)
            if pending:
                stmt = stmt.where(
                    OutboxMessage.delivered_at.is_(None), OutboxMessage.cancelled_at.is_(None)
                )
            return list(u.session.scalars(stmt))

    def events(self, kind: str | None = None) -> list[Event]:
        with self.unit() as u:
            stmt = select(Event).order_by(Event.id)
            if kind:
                stmt = stmt.where(Event.kind == kind)
            return list(u.session.scalars(stmt))

    def count(self, model: type) -> int:
        with self.unit() as u:
            return len(list(u.session.scalars(select(model))))


@pytest.fixture
def team(db: Database, clock: ManualClock, rules: LivechatConfig) -> Team:
    """Coordinators carol and dave; helpers bob, erin and frank; nobody else yet."""
    t = Team(db, clock, rules)
    for name in ("carol", "dave"):
        t.add(name, Role.COORDINATOR)
    for name in ("bob", "erin", "frank"):
        t.add(name, Role.HELPER)
    return t


__all__ = ["Database", "Team"]

"""Fixtures for mail and webhooks: a throwaway CA, a real SMTP server, a real receiver.

Each server is a process of its own on a free 127.0.0.1 port (see
:mod:`tests.support.mailserver` and :mod:`tests.support.hookserver`), stopped at teardown.
``SSL_CERT_FILE`` points at the test CA for the whole test, so the bot verifies the mail
server's certificate as it would a real one's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ircbot.storage import make_engine, make_session_factory, migrate
from tests.support.certs import TestCerts, make_certs
from tests.support.hookserver import HookServer
from tests.support.mailserver import MailServer
from tests.support.ngircd import free_port

SMTP_USER, SMTP_PASSWORD = "livechat-bot", "s3cret-smtp pass"
HOOK_SECRET = "hook-secret-42"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def trust_test_ca(certs: TestCerts, monkeypatch: pytest.MonkeyPatch) -> TestCerts:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    return certs


@pytest.fixture
def mail_server(trust_test_ca: TestCerts, tmp_path: Path) -> Iterator[Callable[..., MailServer]]:
    """``mail_server(start=True, implicit_tls=False)``: a server wanting SMTP_USER's login."""
    servers: list[MailServer] = []

    def factory(*, start: bool = True, implicit_tls: bool = False) -> MailServer:
        out = tmp_path / f"mail{len(servers)}"
        server = MailServer(
            free_port(),
            out,
            trust_test_ca.cert,
            trust_test_ca.key,
            implicit_tls=implicit_tls,
            login=SMTP_USER,
            password=SMTP_PASSWORD,
        )
        servers.append(server)
        return server.start() if start else server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def hook_server(tmp_path: Path) -> Iterator[Callable[..., HookServer]]:
    """``hook_server(start=True, fail=0)``: a receiver checking HOOK_SECRET's signature."""
    servers: list[HookServer] = []

    def factory(*, start: bool = True, fail: int = 0) -> HookServer:
        server = HookServer(free_port(), tmp_path / f"hook{len(servers)}", HOOK_SECRET, fail=fail)
        servers.append(server)
        return server.start() if start else server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated SQLite database (the core's tables)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'notify.db'}")
    migrate(engine)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def smtp_url(server: Any, scheme: str = "smtp") -> str:
    return f"{scheme}://{SMTP_USER}@127.0.0.1:{server.port}"

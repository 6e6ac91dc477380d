"""Shared fixtures: a real ngircd per session, extra servers on demand, IRC test clients and a
scripted server, all torn down by the fixtures so a failing test leaves nothing running.

The session ngircd is shared by many tests: use nicks unique to your test, and never stop it
(ask `ngircd_factory` for a server you may stop, restart or configure differently).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

# `python -m pytest` puts the project root on sys.path, a bare `pytest` does not; the harness
# is imported as `tests.support` either way.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support.client import IRCTestClient  # noqa: E402
from tests.support.fakeserver import ScriptedServer  # noqa: E402
from tests.support.ngircd import NgircdServer  # noqa: E402


class _Address(Protocol):
    host: str
    port: int


@pytest.fixture(scope="session")
def ngircd() -> Iterator[NgircdServer]:
    """One ngircd for the whole session, flood penalty off (MaxPenaltyTime = 0)."""
    with NgircdServer() as server:
        yield server


@pytest.fixture
def ngircd_factory() -> Iterator[Callable[..., NgircdServer]]:
    """Start extra ngircd servers with options, e.g. `ngircd_factory(flood_penalty=True,
    ping_timeout=5)`; each is started before it is returned and stopped at teardown."""
    servers: list[NgircdServer] = []

    def factory(**options: Any) -> NgircdServer:
        server = NgircdServer(**options)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.cleanup()


@pytest.fixture
def irc_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., IRCTestClient]]:
    """Connect registered clients: `irc_client("alice")` joins #livechat on the session ngircd.

    `irc_client(nick, channels=("#livechat",), *, server=None, **connect_options)`: `server`
    is any object with `host` and `port` (another NgircdServer...); connect options go to
    `IRCTestClient.connect` (user, realname, timeout, caps, sasl, password). Every client
    QUITs at teardown, and waits for the server to drop it so its nick is free again.
    """
    clients: list[IRCTestClient] = []

    def factory(
        nick: str,
        channels: Iterable[str] = ("#livechat",),
        *,
        server: _Address | None = None,
        **connect_options: Any,
    ) -> IRCTestClient:
        target: _Address = server if server is not None else request.getfixturevalue("ngircd")
        client = IRCTestClient.connect(target.host, target.port, nick, **connect_options)
        clients.append(client)
        for channel in channels:
            client.join(channel)
        return client

    yield factory
    for client in reversed(clients):
        client.quit(timeout=1)


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A one-client scripted server on a free 127.0.0.1 port, stopped at teardown."""
    with ScriptedServer() as server:
        yield server

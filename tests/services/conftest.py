"""Fixtures for tests that need real services accounts (InspIRCd 3 + Atheme 7.2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import (
    ATHEME_BIN,
    INSPIRCD_BIN,
    ServicesNetwork,
    Waker,
    binaries_available,
)


@pytest.fixture(scope="session")
def services_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicesNetwork]:
    """One services network for the whole session.

    Starting one costs only ~0.03 s, but accounts and nicks live as long as the network, so
    each test module should use its own nick prefix (this package's tests use ``net*``).

    Skips only when the daemons are not installed; any other failure to start is an error
    (with both daemons' log tails), because a silently skipped account suite proves nothing.
    """
    if not binaries_available():
        pytest.skip(
            f"services network needs {INSPIRCD_BIN} and {ATHEME_BIN} (Debian packages "
            "inspircd and atheme-services)"
        )
    with ServicesNetwork(tmp_path_factory.mktemp("services")) as network:
        yield network


@pytest.fixture(scope="session")
def services_waker(services_network: ServicesNetwork) -> Iterator[Waker]:
    """Wake InspIRCd after each second boundary for the whole session (see ``Waker``).

    Any fixture that starts a bot or registers clients should depend on this: the bot's own
    registration then takes 0.5 s on average instead of about 1 s.
    """
    with services_network.waker() as waker:
        yield waker

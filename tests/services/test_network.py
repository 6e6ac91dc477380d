"""The services network itself: the server facts that the bot's account mode relies on.

Raw sockets only, so a failure here points at the network (configs, modules, link), never at
the bot. Users are created once for the module: each batch of registrations costs one InspIRCd
housekeeping tick (up to 1 s), so the module pays for two ticks in all.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.client import IRCTestClient
from tests.support.services import DEFAULT_CAPS, ServicesNetwork

pytestmark = [pytest.mark.services, pytest.mark.timeout(20)]

ACCOUNT = "netmember"
PASSWORD = "pw-netmember-1"
CHANNEL = "#network-test"


@dataclass
class Users:
    """An observer with every capability, a logged-in member and an anonymous user."""

    observer: IRCTestClient
    member: IRCTestClient
    anon: IRCTestClient


@pytest.fixture(scope="module")
def users(services_network: ServicesNetwork) -> Iterator[Users]:
    """Register ACCOUNT, then connect three clients in one tick, all in CHANNEL.

    The member logs in with SASL during registration, as the bot does.
    """
    services_network.register_account(ACCOUNT, PASSWORD)
    observer, member, anon = services_network.connect_many(
        ["netobserver", ACCOUNT, "netanon"], caps=DEFAULT_CAPS, logins={ACCOUNT: PASSWORD}
    )
    try:
        for client in (observer, member, anon):
            client.send_raw(f"JOIN {CHANNEL}")
            client.expect(command="366")
        # The observer must have seen both joins before the tests speak in the channel.
        for nick in (ACCOUNT, "netanon"):
            observer.expect(command="JOIN", source=nick)
        yield Users(observer, member, anon)
    finally:
        for client in (observer, member, anon):
            client.quit()


def test_cap_ls_offers_the_capabilities_the_bot_needs(services_network: ServicesNetwork) -> None:
    """The bot's CAP REQ is built from these; ``sasl`` also proves services are linked."""
    with services_network.client("netcaps") as client:
        offered = client.cap_ls()
    wanted = {
        "sasl",
        "account-tag",
        "account-notify",
        "extended-join",
        "message-tags",
        "multi-prefix",
        "away-notify",
        "chghost",
        "server-time",
    }
    assert wanted <= offered.keys(), f"missing {wanted - offered.keys()}"
    assert "PLAIN" in offered["sasl"].split(",")


def _start_sasl_plain(client: IRCTestClient) -> None:
    """CAP REQ sasl and AUTHENTICATE PLAIN, up to the server's empty challenge."""
    client.send_raw("CAP LS 302")
    client.send_raw("CAP REQ :sasl")
    ack = client.expect(command="CAP", where=lambda m: m.params[1] in {"ACK", "NAK"})
    assert ack.params[1] == "ACK", ack.raw
    client.send_raw("AUTHENTICATE PLAIN")
    challenge = client.expect(command="AUTHENTICATE")
    assert challenge.params == ["+"], challenge.raw  # sent as "AUTHENTICATE :+"


def _plain(account: str, password: str) -> str:
    return base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode("ascii")


def test_sasl_plain_logs_in_a_registered_account(
    services_network: ServicesNetwork, users: Users
) -> None:
    """The exact exchange the bot's transport performs, answered by Atheme."""
    with services_network.client("netsasl") as client:
        _start_sasl_plain(client)
        client.send_raw("AUTHENTICATE " + _plain(ACCOUNT, PASSWORD))
        logged_in = client.expect(command=["900", "904"])
        assert logged_in.command == "900", logged_in.raw
        assert logged_in.params[2] == ACCOUNT
        assert client.expect(command=["903", "904"]).command == "903"


def test_sasl_plain_refuses_a_wrong_password(
    services_network: ServicesNetwork, users: Users
) -> None:
    """904 is what the bot must treat as a failed login (and not carry on silently)."""
    with services_network.client("netsaslbad") as client:
        _start_sasl_plain(client)
        client.send_raw("AUTHENTICATE " + _plain(ACCOUNT, "not-the-password"))
        result = client.expect(command=["900", "903", "904"])
        assert result.command == "904", result.raw


def test_account_tag_marks_only_logged_in_speakers(users: Users) -> None:
    """Identity in account mode comes from this tag; its absence means not logged in."""
    assert "account-tag" in users.observer.caps
    users.member.say(CHANNEL, "from the member")
    users.anon.say(CHANNEL, "from the anonymous user")
    from_member = users.observer.expect("^from the member$", target=CHANNEL)
    from_anon = users.observer.expect("^from the anonymous user$", target=CHANNEL)
    assert from_member.tags.get("account") == ACCOUNT, from_member.raw
    assert "account" not in from_anon.tags, from_anon.raw


def test_whois_gives_330_for_a_logged_in_user_only(users: Users) -> None:
    """WHOIS 330 is the bot's fallback when a line carries no account tag."""
    observer = users.observer
    observer.send_raw(f"WHOIS {ACCOUNT}")
    observer.send_raw("WHOIS netanon")
    member_330 = observer.expect(command="330")
    assert member_330.params[1:3] == [ACCOUNT, ACCOUNT]
    observer.expect(command="318", where=lambda m: m.params[1] == ACCOUNT)
    observer.expect(command="318", where=lambda m: m.params[1] == "netanon")
    anon_lines = [m for m in observer.drain() if m.command == "330"]
    assert anon_lines == [], anon_lines

"""The trust rules as a table: a situation, and who the identity policy says it is.

Pure logic (no sockets): each row sets up what the bot has seen of the network and asks
the policy one of its three questions (who sent this line, who holds this nick now, what a
WHOIS answer proves). The IRC tests in ``tests/impersonation/`` play the same attacks on
real servers; this table is the whole policy at a glance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ircbot.identity_policy import AccountPolicy, HostmaskPolicy, IdentityPolicy, Status
from ircbot.network import NetworkState
from ircbot.resolver import WhoisResult

MASKS = ["bob!*@bob.example", "*!*@staff.example", "*!carol@*"]


def network(caps: set[str] = frozenset(), casemapping: str = "ascii") -> NetworkState:
    net = NetworkState(["#livechat"])
    net.set_casemapping(casemapping)
    net.caps = set(caps)
    return net


def account_policy(*caps: str) -> AccountPolicy:
    return AccountPolicy(network(set(caps)))


def hostmask_policy() -> HostmaskPolicy:
    return HostmaskPolicy(network(), MASKS)


@dataclass(frozen=True)
class Row:
    situation: str
    ask: Callable[[], tuple[Status, str | None]]
    status: Status
    key: str | None


def sender(policy: IdentityPolicy, prefix: str, **tags: str) -> tuple[Status, str | None]:
    nick, _, userhost = prefix.partition("!")
    user, _, host = userhost.partition("@")
    who = policy.sender(nick, user, host, tags)
    return who.status, who.identity.key if who.identity else None


def joined(policy: IdentityPolicy, prefix: str, account: str | None) -> IdentityPolicy:
    nick, _, userhost = prefix.partition("!")
    user, _, host = userhost.partition("@")
    policy.network.on_join(nick, user, host, "#livechat", account)
    return policy


def holder(policy: IdentityPolicy, nick: str) -> tuple[Status, str | None]:
    who = policy.holder(nick)
    return who.status, who.identity.key if who.identity else None


def whois(
    policy: IdentityPolicy, result: WhoisResult | None, asker: str | None = None
) -> tuple[Status, str | None]:
    who = policy.from_whois("amy", result, asker)
    return who.status, who.identity.key if who.identity else None


def named(policy: IdentityPolicy, value: str) -> tuple[Status, str | None]:
    who = policy.named(value)
    if who is None:
        return Status.UNVERIFIED, None
    return who.status, who.identity.key if who.identity else None


AMY = WhoisResult(nick="amy", online=True, user="~amy", host="home.example", account="Amy")

ROWS = [
    # -- account mode: the account the server vouches for, nothing else ----------------------
    Row(
        "account-tag on the line",
        lambda: sender(account_policy("account-tag"), "amy!~amy@h", account="Amy"),
        Status.IDENTIFIED,
        "amy",
    ),
    Row(
        "account-tag negotiated, line untagged: logged out",
        lambda: sender(account_policy("account-tag"), "amy!~amy@h"),
        Status.ANONYMOUS,
        None,
    ),
    Row(
        "ACCOUNT * in the tag: logged out",
        lambda: sender(account_policy("account-tag"), "amy!~amy@h", account="*"),
        Status.ANONYMOUS,
        None,
    ),
    Row(
        "no account-tag, joined with extended-join + account-notify",
        lambda: sender(
            joined(account_policy("account-notify", "extended-join"), "amy!~amy@h", "Amy"),
            "amy!~amy@h",
        ),
        Status.IDENTIFIED,
        "amy",
    ),
    Row(
        "tracked account, but the line comes from another user@host",
        lambda: sender(
            joined(account_policy("account-notify", "extended-join"), "amy!~amy@h", "Amy"),
            "amy!~eve@elsewhere",
        ),
        Status.UNVERIFIED,
        None,
    ),
    Row(
        "tracked account without account-notify: may be stale",
        lambda: sender(joined(account_policy("extended-join"), "amy!~amy@h", "Amy"), "amy!~amy@h"),
        Status.UNVERIFIED,
        None,
    ),
    Row(
        "nobody tracked under the nick: ask WHOIS",
        lambda: holder(account_policy(), "amy"),
        Status.UNVERIFIED,
        None,
    ),
    Row("WHOIS: 330 account", lambda: whois(account_policy(), AMY), Status.IDENTIFIED, "amy"),
    Row(
        "WHOIS: online, no 330",
        lambda: whois(
            account_policy(), WhoisResult(nick="amy", online=True, user="~amy", host="h")
        ),
        Status.ANONYMOUS,
        None,
    ),
    Row(
        "WHOIS: 401 no such nick",
        lambda: whois(account_policy(), WhoisResult(nick="amy")),
        Status.OFFLINE,
        None,
    ),
    Row("WHOIS: no answer in time", lambda: whois(account_policy(), None), Status.UNVERIFIED, None),
    Row(
        "WHOIS about the sender shows the line's user@host",
        lambda: whois(account_policy(), AMY, asker="~amy@home.example"),
        Status.IDENTIFIED,
        "amy",
    ),
    Row(
        "WHOIS about the sender shows someone else's user@host",
        lambda: whois(account_policy(), AMY, asker="~eve@evil.example"),
        Status.UNVERIFIED,
        None,
    ),
    Row(
        "account:NAME names the account",
        lambda: named(account_policy(), "account:Bob"),
        Status.IDENTIFIED,
        "bob",
    ),
    Row(
        "a mask names nobody in account mode",
        lambda: named(account_policy(), "*!*@h"),
        Status.UNVERIFIED,
        None,
    ),
    # -- hostmask mode: user@host, or the one configured mask a connection matches ---------
    Row(
        "no mask: the connection's user@host",
        lambda: sender(hostmask_policy(), "Zed!~zed@Host.Example"),
        Status.IDENTIFIED,
        "~zed@host.example",
    ),
    Row(
        "matches one mask: is that entry",
        lambda: sender(hostmask_policy(), "bob!~x1@bob.example"),
        Status.IDENTIFIED,
        "bob!*@bob.example",
    ),
    Row(
        "same mask, another ident: the same person",
        lambda: sender(hostmask_policy(), "Bob!~x2@bob.example"),
        Status.IDENTIFIED,
        "bob!*@bob.example",
    ),
    Row(
        "the mask's nick taken from another host: not the mask",
        lambda: sender(hostmask_policy(), "bob!~bob@evil.example"),
        Status.IDENTIFIED,
        "~bob@evil.example",
    ),
    Row(
        "matches two masks: nobody in particular (no role)",
        lambda: sender(hostmask_policy(), "x!carol@staff.example"),
        Status.IDENTIFIED,
        "carol@staff.example",
    ),
    Row(
        "an explicit mask entry names that entry",
        lambda: named(hostmask_policy(), "BOB!*@bob.example"),
        Status.IDENTIFIED,
        "bob!*@bob.example",
    ),
    Row(
        "an explicit user@host",
        lambda: named(hostmask_policy(), "~zed@Host.Example"),
        Status.IDENTIFIED,
        "~zed@host.example",
    ),
    Row(
        "account:NAME names nobody in hostmask mode",
        lambda: named(hostmask_policy(), "account:bob"),
        Status.UNVERIFIED,
        None,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.situation for r in ROWS])
def test_trust_rule(row: Row) -> None:
    assert row.ask() == (row.status, row.key)


def test_a_connection_matching_two_masks_says_which() -> None:
    who = hostmask_policy().sender("x", "carol", "staff.example", {})
    assert who.identity is not None
    assert who.identity.mask_entry is None
    assert who.identity.ambiguous == ("*!*@staff.example", "*!carol@*")


def test_unverified_carries_no_identity_by_construction() -> None:
    from ircbot.identity import Identity
    from ircbot.identity_policy import Who

    with pytest.raises(ValueError):
        Who("amy", Status.UNVERIFIED, Identity("amy", "amy", "u", "h"))
    with pytest.raises(ValueError):
        Who("amy", Status.IDENTIFIED)

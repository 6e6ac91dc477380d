"""Tests of the test harness itself, against the real ngircd where it matters.

If these fail, every integration test's verdict is suspect, so they prove the harness's
promises one by one: conversation-style matching and consumption, readable failures, absence
checks, lenient decoding, restarts on the same port, the scripted server, CAP/SASL negotiation,
NickServ and two-step registration (the services tests' needs) and the TOML writer.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.botproc import dump_toml
from tests.support.client import IRCTestClient, Message
from tests.support.fakeserver import ScriptedServer


def test_two_clients_in_one_channel_see_each_other(irc_client) -> None:
    alice = irc_client("h1_alice")
    bob = irc_client("h1_bob")

    joined = alice.expect(command="JOIN", source="h1_bob")
    assert joined.target == "#livechat"

    alice.say("#livechat", "hello from alice")
    msg = bob.expect(r"hello from alice", source="h1_alice", target="#livechat")
    assert msg.command == "PRIVMSG"
    assert msg.text == "hello from alice"
    assert (msg.nick, msg.user, msg.host) == ("h1_alice", "~h1_alice", "127.0.0.1")


def test_expect_consumes_and_fails_with_the_recent_lines(irc_client) -> None:
    alice = irc_client("h2_alice")
    bob = irc_client("h2_bob")
    alice.say("#livechat", "one")
    alice.say("#livechat", "two")

    # "one" arrives first but does not match, so it stays available for the next expect.
    assert bob.expect(r"^t", source="h2_alice").text == "two"
    assert bob.expect(r"^o", source="h2_alice").text == "one"

    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        bob.expect(r"^o", timeout=0.2, source="h2_alice")
    assert time.monotonic() - started < 30  # bounded: it gives up, whatever the load
    report = str(failure.value)
    assert "within 0.20 s" in report
    assert "* :h2_alice!~h2_alice@127.0.0.1 PRIVMSG #livechat :one" in report  # consumed mark
    assert " 366 h2_bob #livechat " in report  # earlier lines are listed too


def test_expect_none_watches_new_messages_unless_told_otherwise(irc_client) -> None:
    alice = irc_client("h3_alice")
    bob = irc_client("h3_bob")
    alice.say("#livechat", "early bird")
    alice.say("#livechat", "marker")
    bob.expect("marker")  # same connection, so "early bird" has arrived too

    bob.expect_none("early bird", within=0.1)  # arrived before the call: not considered
    with pytest.raises(AssertionError, match="expected no PRIVMSG matching 'early bird'"):
        bob.expect_none("early bird", within=30, include_pending=True)

    # A message that arrives during the window fails the check as soon as it arrives. One
    # sent just before the call may arrive before it too (and not count), so the whisper is
    # repeated until the check fails: only order and eventual arrival matter, not speed.
    stop = threading.Event()

    def whisper() -> None:
        while not stop.is_set():
            alice.say("h3_bob", "whisper")
            stop.wait(0.2)

    sender = threading.Thread(target=whisper, daemon=True)
    started = time.monotonic()
    sender.start()
    try:
        with pytest.raises(AssertionError, match="got :h3_alice"):
            bob.expect_none("whisper", within=60, target="h3_bob")
    finally:
        stop.set()
        sender.join(timeout=10)
    assert time.monotonic() - started < 60  # it ended on a message, not on the window


def test_expect_none_before_ends_on_a_marker(irc_client) -> None:
    alice = irc_client("h5_alice")
    bob = irc_client("h5_bob")

    def marker(text: str):
        return lambda: bob.expect(rf"^{text}$", source="h5_alice")

    alice.say("#livechat", "chatter")
    alice.say("#livechat", "first marker")
    assert bob.expect_none_before("secret", marker=marker("first marker")).text == "first marker"
    assert bob.expect("chatter").text == "chatter"  # not consumed by the check

    alice.say("h5_bob", "a secret")  # pending, then the marker: fails, naming both
    alice.say("h5_bob", "second marker")
    with pytest.raises(AssertionError, match=r"before .*second marker; got .*a secret"):
        bob.expect_none_before("secret", marker=marker("second marker"))
    # Without pending messages, only what comes after the call counts.
    alice.say("h5_bob", "third marker")
    bob.expect_none_before("secret", marker=marker("third marker"), include_pending=False)

    def said_after_the_call() -> Message:
        alice.say("h5_bob", "another secret")
        alice.say("h5_bob", "fourth marker")
        return marker("fourth marker")()

    with pytest.raises(AssertionError, match=r"got .*another secret"):
        bob.expect_none_before("secret", marker=said_after_the_call, include_pending=False)


def test_invalid_utf8_is_decoded_leniently(irc_client) -> None:
    alice = irc_client("h4_alice")
    bob = irc_client("h4_bob")
    alice.send_raw(b"PRIVMSG #livechat :caf\xe9 au lait")
    assert bob.expect(r"au lait", source="h4_alice").text == "caf\u00e9 au lait"


def test_nick_away_part_wait_for_the_server(irc_client) -> None:
    alice = irc_client("h6_alice")
    bob = irc_client("h6_bob")
    alice.nick("h6_alice2")
    assert alice.current_nick == "h6_alice2"
    assert bob.expect(command="NICK", source="h6_alice").text == "h6_alice2"

    alice.away("lunch")
    bob.say("h6_alice2", "there?")
    assert bob.expect(command="301", target="h6_bob").text == "lunch"  # RPL_AWAY
    alice.away(None)

    alice.notice("#livechat", "bye")
    assert bob.expect("bye", command="NOTICE", source="h6_alice2").target == "#livechat"
    alice.part("#livechat", "done")
    assert bob.expect(command="PART", source="h6_alice2").text == "done"


def test_restart_keeps_the_port_and_accepts_new_clients(ngircd_factory, irc_client) -> None:
    server = ngircd_factory()
    port = server.port
    carol = irc_client("h5_carol", server=server)

    server.restart()
    assert server.port == port
    assert carol.expect_closed(timeout=5) == "connection closed by the server"
    assert carol.expect(command="ERROR").text.startswith("Server going down")

    again = irc_client("h5_carol", channels=("#other",), server=server)
    assert again.current_nick == "h5_carol"

    server.stop()
    server.stop()  # twice is fine
    assert not server.running
    again.expect_closed(timeout=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(server.address, timeout=1)


def test_scripted_server_round_trip_with_a_plain_socket(scripted_server) -> None:
    with socket.create_connection(scripted_server.address, timeout=5) as sock:
        sock.sendall(b"CAP LS 302\r\nNICK x\r\n")
        assert scripted_server.expect_line(r"^CAP LS 302$") == "CAP LS 302"

        scripted_server.send("CAP * LS :sasl")
        received = b""
        while not received.endswith(b"\r\n"):
            received += sock.recv(4096)
        assert received == b"CAP * LS :sasl\r\n"

        # The next line is NICK, not USER: strict by default, nothing skipped silently.
        with pytest.raises(AssertionError, match="the next line was 'NICK x'"):
            scripted_server.expect_line(r"^USER", timeout=1)

        scripted_server.close_client()
        assert sock.recv(4096) == b""
    assert scripted_server.lines == ["CAP LS 302", "NICK x"]


def test_client_negotiates_caps_and_sasl_against_replayed_lines(
    scripted_server: ScriptedServer,
) -> None:
    server = scripted_server
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(
            IRCTestClient.connect,
            server.host,
            server.port,
            "sasluser",
            caps=["account-tag"],
            sasl=("acct", "secret"),
        )
        server.expect_line(r"^CAP LS 302$")
        server.expect_line(r"^NICK sasluser$")
        server.expect_line(r"^USER sasluser 0 \* :sasluser$")
        server.send("PING :tok1")
        server.expect_line(r"^PONG :tok1$")
        server.send(":srv CAP * LS * :multi-prefix sasl=PLAIN")
        server.send(":srv CAP * LS :account-tag")
        server.expect_line(r"^CAP REQ :account-tag sasl$")
        server.send(":srv CAP sasluser ACK :account-tag sasl ")  # trailing space, as seen live
        server.expect_line(r"^AUTHENTICATE PLAIN$")
        server.send("AUTHENTICATE :+")  # InspIRCd's spelling
        payload = server.expect_line(r"^AUTHENTICATE ").split(" ", 1)[1]
        assert base64.b64decode(payload) == b"acct\0acct\0secret"
        server.send(":srv 900 sasluser sasluser!u@h acct :You are now logged in as acct")
        server.send(":srv 903 sasluser :SASL authentication successful")
        server.expect_line(r"^CAP END$")
        server.send(":srv 001 sasluser :Welcome")
        client = future.result(timeout=5)
    try:
        assert client.server_caps == {"multi-prefix": "", "sasl": "PLAIN", "account-tag": ""}
        assert client.caps == {"account-tag", "sasl"}
        assert client.account == "acct"
        server.send(r"@account=bob;msgid=a\:b\sc :bob!b@h PRIVMSG sasluser :hi there")
        msg = client.expect(r"^hi", source="bob")
        assert msg.tags == {"account": "bob", "msgid": "a;b c"}
        assert msg.params == ["sasluser", "hi there"]
    finally:
        client.close()


NICKSERV = ":NickServ!NickServ@services.test NOTICE ns_user :"


def test_client_registers_in_two_steps_and_talks_to_nickserv(
    scripted_server: ScriptedServer,
) -> None:
    """What the services tests rely on: CAP LS before registering, registration sent now and
    awaited later, NickServ answers told apart from the server's own NOTICEs, predicates on
    numerics' parameters, and draining what a test left unread."""
    server = scripted_server
    client = IRCTestClient.open(server.host, server.port, "ns_user")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            offered = pool.submit(client.cap_ls)
            server.expect_line(r"^CAP LS 302$")
            server.send(":srv CAP * LS :sasl=PLAIN account-tag")
            assert offered.result(timeout=5) == {"sasl": "PLAIN", "account-tag": ""}

            client.begin()
            server.expect_line(r"^NICK ns_user$")
            server.expect_line(r"^USER ns_user 0 \* :ns_user$")
            assert not client.registration_ended()
            server.send(":srv 001 ns_user :Welcome")
            assert client.registration_ended(timeout=5)
            assert client.welcome(timeout=0).params == ["ns_user", "Welcome"]

            refused = pool.submit(client.nickserv_identify, "ns_acct", "wrong")
            server.expect_line(r"^PRIVMSG NickServ :IDENTIFY ns_acct wrong$")
            server.send(NICKSERV + "Invalid password for ns_acct.")
            with pytest.raises(AssertionError, match="Invalid password for ns_acct"):
                refused.result(timeout=5)

            identified = pool.submit(client.nickserv_identify, "ns_acct", "right")
            server.expect_line(r"^PRIVMSG NickServ :IDENTIFY ns_acct right$")
            server.send(":services.test NOTICE ns_user :Services are running in debug mode.")
            server.send(NICKSERV + "You are now identified for ns_acct.")
            server.send(":srv 900 ns_user ns_user!u@h ns_acct :You are now logged in as ns_acct")
            identified.result(timeout=5)
            assert client.account == "ns_acct"

            logged_out = pool.submit(client.nickserv_logout)
            server.expect_line(r"^PRIVMSG NickServ :LOGOUT$")
            server.send(NICKSERV + "You have been logged out.")
            server.send(":srv 901 ns_user ns_user!u@h :You are now logged out")
            logged_out.result(timeout=5)

            taken = pool.submit(client.nickserv_register, "pw-ns")
            server.expect_line(r"^PRIVMSG NickServ :REGISTER pw-ns ns_user@example.org$")
            server.send(NICKSERV + "ns_user is already registered.")
            with pytest.raises(AssertionError, match="NickServ refused to register"):
                taken.result(timeout=5)

        server.send(":srv 318 ns_user other :End of /WHOIS list.")
        server.send(":srv 318 ns_user ns_user :End of /WHOIS list.")
        mine = client.expect(command="318", where=lambda m: m.params[1] == "ns_user")
        assert mine.params[1] == "ns_user"
        # Left unread: the other WHOIS's end and the server's debug-mode NOTICE.
        left = client.drain()
        assert [m.raw for m in left] == [
            ":services.test NOTICE ns_user :Services are running in debug mode.",
            ":srv 318 ns_user other :End of /WHOIS list.",
        ]
        assert client.drain() == []
    finally:
        client.close()
    with pytest.raises(AssertionError, match="318 where a predicate holds; connection closed"):
        client.expect(command="318", where=lambda m: True)


def test_toml_writer_round_trips_through_tomllib() -> None:
    config = {
        "irc": {
            "host": "127.0.0.1",
            "port": 6667,
            "tls": False,
            "nick": "bot",
            "alt_nicks": ["bot_", "bot__"],
            "realname": 'quote " backslash \\ newline \n caf\u00e9',
            "flood_rate": 2.5,
            "sasl_password_file": None,  # None drops the key
        },
        "bot": {"prefix": "!", "plugins": ["livechat"], "identity": "hostmask"},
        "database": {"url": "sqlite:///bot.db"},
        "livechat": {"threshold": 3, "nested": {"key with space": True}},
    }
    loaded = tomllib.loads(dump_toml(config))
    del config["irc"]["sasl_password_file"]
    assert loaded == config

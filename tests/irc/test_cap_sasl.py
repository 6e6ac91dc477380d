"""CAP negotiation and SASL PLAIN against a scripted server replaying real server lines.

The lines are InspIRCd 3's, as captured on the services network: ``CAP * LS`` with the full
module list, ``AUTHENTICATE :+`` with a colon, 900 then 903. The scripted server checks the
bot's lines in order, so each test reads as the exchange it proves.
"""

from __future__ import annotations

import base64
import logging
import re
import time

import pytest

from ircbot.transport import FatalError
from tests.support.botthread import BotThread, bot_config

PASSWORD = "Correct-Horse-Battery-9"
INSPIRCD_LS = (
    ":irc.test CAP * LS :account-notify account-tag away-notify batch cap-notify chghost "
    "echo-message extended-join message-tags multi-prefix sasl=PLAIN server-time "
    "userhost-in-names"
)
# The bot's default wanted list, in its order, filtered by what INSPIRCD_LS offers.
ALL_WANTED = (
    "sasl account-tag account-notify extended-join multi-prefix message-tags server-time "
    "chghost away-notify"
)


@pytest.fixture
def start_bot(scripted_server, tmp_path):
    """Start a BotThread against the scripted server; torn down without waiting on QUIT."""
    bots: list[BotThread] = []

    def start(password: str | None = PASSWORD, **irc: object) -> BotThread:
        if password is not None:
            irc = {"sasl_username": "lcbot", "sasl_password_env": "LCBOT_SASL_PW", **irc}
        config = bot_config(
            scripted_server.host, scripted_server.port, f"sqlite:///{tmp_path}/bot.db", irc=irc
        )
        env = {"LCBOT_SASL_PW": password} if password is not None else {}
        bot = BotThread(config, env=env).start(wait_joined=False)
        bots.append(bot)
        scripted_server.wait_for_client()
        return bot

    yield start
    scripted_server.close_client()
    for bot in bots:
        bot.stop()


def expect_registration(server) -> None:
    server.expect_line(r"^CAP LS 302$")
    server.expect_line(r"^NICK lcbot$")
    server.expect_line(r"^USER ")


def expect_payload(server, password: str = PASSWORD) -> None:
    payload = base64.b64encode(f"lcbot\0lcbot\0{password}".encode()).decode()
    server.expect_line(rf"^AUTHENTICATE {re.escape(payload)}$")


def welcome_and_expect_join(server) -> None:
    server.send(":irc.test 001 lcbot :Welcome to the test network lcbot")
    server.expect_line(r"^JOIN #livechat$")


def stop_on_fatal(bot: BotThread, server) -> BaseException | None:
    """The bot says QUIT on its way out; hang up as a server would, and collect its error."""
    server.expect_line(r"^QUIT", skip=True)
    server.close_client()
    return bot.wait_exit(5)


# -------------------------------------------------------------------------- the happy path


def test_cap_ls_302_goes_out_before_nick_and_user(scripted_server, start_bot):
    start_bot(password=None)
    assert scripted_server.expect_line(r"^CAP ") == "CAP LS 302"
    scripted_server.expect_line(r"^NICK lcbot$")
    scripted_server.expect_line(r"^USER livechat ")


def test_inspircd_sasl_exchange_replayed_line_by_line(scripted_server, start_bot):
    start_bot()
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.expect_line(rf"^CAP REQ :{ALL_WANTED}$")
    scripted_server.send(f":irc.test CAP * ACK :{ALL_WANTED}")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
    scripted_server.send("AUTHENTICATE :+")
    expect_payload(scripted_server)
    scripted_server.send(":irc.test 900 lcbot lcbot!u@h lcbot :You are now logged in as lcbot")
    scripted_server.send(":irc.test 903 lcbot :SASL authentication successful")
    scripted_server.expect_line(r"^CAP END$")
    welcome_and_expect_join(scripted_server)


def test_multiline_cap_ls_is_read_to_its_end(scripted_server, start_bot):
    start_bot(password=None)
    expect_registration(scripted_server)
    scripted_server.send(":irc.test CAP * LS * :account-notify batch cap-notify")
    scripted_server.send(":irc.test CAP * LS * :echo-message multi-prefix")
    scripted_server.send(":irc.test CAP * LS :away-notify server-time")
    # One request, after the last line, with wanted caps from every line.
    scripted_server.expect_line(r"^CAP REQ :account-notify multi-prefix server-time away-notify$")
    scripted_server.send(":irc.test CAP * ACK :account-notify multi-prefix server-time away-notify")
    scripted_server.expect_line(r"^CAP END$")


def test_requests_only_offered_caps_it_wants(scripted_server, start_bot):
    start_bot(password=None, caps=["away-notify", "chghost", "invite-notify"])
    expect_registration(scripted_server)
    scripted_server.send(":irc.test CAP * LS :batch chghost echo-message invite-notify sasl")
    scripted_server.expect_line(r"^CAP REQ :chghost invite-notify$")


def test_no_cap_on_offer_that_it_wants_ends_negotiation(scripted_server, start_bot):
    start_bot(password=None)
    expect_registration(scripted_server)
    scripted_server.send(":irc.test CAP * LS :batch echo-message")
    scripted_server.expect_line(r"^CAP END$")
    welcome_and_expect_join(scripted_server)


def test_trailing_space_after_acked_caps_does_not_stall(scripted_server, start_bot):
    start_bot(caps=["sasl", "account-tag"])
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.expect_line(r"^CAP REQ :sasl account-tag$")
    scripted_server.send(":irc.test CAP * ACK :sasl account-tag ")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$", timeout=2)


def test_nak_of_several_caps_is_retried_one_by_one(scripted_server, start_bot):
    start_bot(password=None, caps=["account-tag", "multi-prefix", "away-notify"])
    expect_registration(scripted_server)
    scripted_server.send(":irc.test CAP * LS :account-tag multi-prefix away-notify")
    scripted_server.expect_line(r"^CAP REQ :account-tag multi-prefix away-notify$")
    scripted_server.send(":irc.test CAP * NAK :account-tag multi-prefix away-notify")
    scripted_server.expect_line(r"^CAP REQ :account-tag$")
    scripted_server.expect_line(r"^CAP REQ :multi-prefix$")
    scripted_server.expect_line(r"^CAP REQ :away-notify$")
    scripted_server.send(":irc.test CAP * ACK :account-tag")
    scripted_server.send(":irc.test CAP * NAK :multi-prefix")
    scripted_server.send(":irc.test CAP * ACK :away-notify")
    scripted_server.expect_line(r"^CAP END$")
    welcome_and_expect_join(scripted_server)


def test_nak_then_sasl_still_logs_in(scripted_server, start_bot):
    start_bot(caps=["sasl", "account-tag"])
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.expect_line(r"^CAP REQ :sasl account-tag$")
    scripted_server.send(":irc.test CAP * NAK :sasl account-tag")
    scripted_server.expect_line(r"^CAP REQ :sasl$")
    scripted_server.expect_line(r"^CAP REQ :account-tag$")
    scripted_server.send(":irc.test CAP * ACK :sasl")
    scripted_server.send(":irc.test CAP * NAK :account-tag")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
    scripted_server.send("AUTHENTICATE :+")
    expect_payload(scripted_server)
    scripted_server.send(":irc.test 903 lcbot :SASL authentication successful")
    scripted_server.expect_line(r"^CAP END$")
    welcome_and_expect_join(scripted_server)


# --------------------------------------------------------------------------- failures


def test_sasl_failure_when_required_stops_the_bot_with_one_clear_line(
    scripted_server, start_bot, caplog
):
    caplog.set_level(logging.INFO)
    bot = start_bot(caps=["sasl"], sasl_required=True)
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.expect_line(r"^CAP REQ :sasl$")
    scripted_server.send(":irc.test CAP * ACK :sasl")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
    scripted_server.send("AUTHENTICATE :+")
    expect_payload(scripted_server)
    scripted_server.send(":irc.test 904 lcbot :SASL authentication failed")
    error = stop_on_fatal(bot, scripted_server)
    assert isinstance(error, FatalError)
    assert "904" in str(error)
    assert "CAP END" not in scripted_server.lines
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert "lcbot" in message
    assert "SASL authentication failed" in message
    assert "\n" not in message


def test_sasl_failure_when_optional_carries_on(scripted_server, start_bot):
    bot = start_bot(caps=["sasl"], sasl_required=False)
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.expect_line(r"^CAP REQ :sasl$")
    scripted_server.send(":irc.test CAP * ACK :sasl")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
    scripted_server.send("AUTHENTICATE :+")
    expect_payload(scripted_server)
    scripted_server.send(":irc.test 904 lcbot :SASL authentication failed")
    scripted_server.expect_line(r"^CAP END$")
    welcome_and_expect_join(scripted_server)
    assert bot.error is None


def test_silent_server_ends_negotiation_after_the_timeout(scripted_server, start_bot):
    started = time.monotonic()
    start_bot(password=None, sasl_timeout=1)
    expect_registration(scripted_server)
    scripted_server.expect_line(r"^CAP END$", timeout=15)
    assert time.monotonic() - started >= 0.9
    welcome_and_expect_join(scripted_server)


def test_silent_server_with_sasl_required_stops_the_bot(scripted_server, start_bot):
    bot = start_bot(sasl_timeout=1, sasl_required=True)
    expect_registration(scripted_server)
    error = stop_on_fatal(bot, scripted_server)
    assert isinstance(error, FatalError)
    assert "timed out" in str(error)
    assert "CAP END" not in scripted_server.lines


def test_long_password_goes_in_400_byte_chunks(scripted_server, start_bot):
    password = "p4ss-" * 90  # 450 bytes
    start_bot(password=password, caps=["sasl"])
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.expect_line(r"^CAP REQ :sasl$")
    scripted_server.send(":irc.test CAP * ACK :sasl")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
    scripted_server.send("AUTHENTICATE :+")
    first = scripted_server.expect_line(r"^AUTHENTICATE ").split(" ", 1)[1]
    second = scripted_server.expect_line(r"^AUTHENTICATE ").split(" ", 1)[1]
    assert len(first) == 400
    assert 0 < len(second) < 400
    assert base64.b64decode(first + second) == f"lcbot\0lcbot\0{password}".encode()
    scripted_server.send(":irc.test 903 lcbot :SASL authentication successful")
    scripted_server.expect_line(r"^CAP END$")


def test_the_password_never_reaches_the_log(scripted_server, start_bot, caplog):
    caplog.set_level(logging.DEBUG)
    start_bot(caps=["sasl"])
    expect_registration(scripted_server)
    scripted_server.send(INSPIRCD_LS)
    scripted_server.send(":irc.test CAP * ACK :sasl")
    scripted_server.expect_line(r"^CAP REQ :sasl$")
    scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
    scripted_server.send("AUTHENTICATE :+")
    expect_payload(scripted_server)
    scripted_server.send(":irc.test 903 lcbot :SASL authentication successful")
    scripted_server.expect_line(r"^CAP END$")
    welcome_and_expect_join(scripted_server)
    payload = base64.b64encode(f"lcbot\0lcbot\0{PASSWORD}".encode()).decode()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SASL login succeeded" in logged  # the log was captured at all
    assert PASSWORD not in logged
    assert payload not in logged  # base64 is the password, readable by anyone

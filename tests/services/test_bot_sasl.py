"""The bot's SASL PLAIN login against Atheme: the password from the environment or a file,
and a wrong password that aborts or carries on as ``[irc] sasl_required`` says.

Whether the bot is logged in is asked of the server (WHOIS 330 from an observer), not of the
bot. Each outcome must be told in one log line that says what happened; the password appears
in no log line at all.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ircbot.transport import FatalError
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient, Message
from tests.support.services import ServicesNetwork, Waker

pytestmark = [pytest.mark.services, pytest.mark.timeout(30)]

ACCOUNT = "sasbot"
PASSWORD = "pw-sasbot-Correct-9"
WRONG = "pw-sasbot-wrong-0"
NICK = "sasbot-run"


@pytest.fixture(scope="module")
def observer(services_network: ServicesNetwork, services_waker: Waker) -> Iterator[IRCTestClient]:
    """Registers the bot's account (and leaves) and an observer, in one tick."""
    clients = services_network.connect_accounts(
        [ACCOUNT, "sasobserver"], accounts={ACCOUNT: PASSWORD}
    )
    clients.pop(ACCOUNT).quit()
    yield clients["sasobserver"]
    clients["sasobserver"].quit()


@pytest.fixture
def start_bot(services_network: ServicesNetwork, tmp_path: Path) -> Iterator:
    """Start a bot logging in as ACCOUNT (no plugins); every bot is stopped at teardown."""
    bots: list[BotThread] = []

    def start(
        *, env: dict[str, str] | None = None, wait_joined: bool = True, **irc: object
    ) -> BotThread:
        config = bot_config(
            services_network.host,
            services_network.port,
            f"sqlite:///{tmp_path}/bot.db",
            irc={"nick": NICK, "channels": ["#sasl"], "sasl_username": ACCOUNT, **irc},
            bot={"identity": "account"},
        )
        bot = BotThread(config, env=env or {})
        bots.append(bot)
        return bot.start(wait_joined=wait_joined)

    yield start
    for bot in bots:
        bot.stop()


def account_of(observer: IRCTestClient, nick: str) -> str | None:
    """The account the server says ``nick`` is logged in as (WHOIS 330), None if none."""
    observer.send_raw(f"WHOIS {nick}")

    def about_nick(m: Message) -> bool:
        return m.params[1:2] == [nick]

    line = observer.expect(command=["330", "318", "401"], where=about_nick)
    if line.command == "401":
        observer.expect(command="318", where=about_nick)
        raise AssertionError(f"{nick} is not on the network")
    if line.command == "318":
        return None
    observer.expect(command="318", where=about_nick)
    return line.params[2]


def sasl_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The log lines about SASL at INFO and above."""
    return [r for r in caplog.records if r.levelno >= logging.INFO and "SASL" in r.getMessage()]


def assert_no_secret(caplog: pytest.LogCaptureFixture, password: str) -> None:
    payload = base64.b64encode(f"{ACCOUNT}\0{ACCOUNT}\0{password}".encode()).decode()
    for record in caplog.records:
        text = record.getMessage()
        assert password not in text and payload not in text, f"secret logged: {text!r}"


@pytest.fixture(autouse=True)
def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ircbot")
    caplog.set_level(logging.DEBUG, logger="irc")


def test_logs_in_with_the_password_from_the_environment(
    start_bot, observer: IRCTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    start_bot(sasl_password_env="SASBOT_PASSWORD", env={"SASBOT_PASSWORD": PASSWORD})
    assert account_of(observer, NICK) == ACCOUNT
    (record,) = sasl_records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"SASL login succeeded as {ACCOUNT}"
    assert_no_secret(caplog, PASSWORD)


def test_logs_in_with_the_password_from_a_file(
    start_bot, observer: IRCTestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "sasl-password"
    secret.write_text(PASSWORD + "\n")
    start_bot(sasl_password_file=str(secret))
    assert account_of(observer, NICK) == ACCOUNT
    assert [r.getMessage() for r in sasl_records(caplog)] == [f"SASL login succeeded as {ACCOUNT}"]
    assert_no_secret(caplog, PASSWORD)


def test_a_wrong_password_aborts_when_sasl_is_required(
    start_bot, observer: IRCTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The default: no connection without the account, and the bot stops instead of looping."""
    bot = start_bot(
        sasl_password_env="SASBOT_PASSWORD", env={"SASBOT_PASSWORD": WRONG}, wait_joined=False
    )
    error = bot.wait_exit(10)
    assert isinstance(error, FatalError), repr(error)
    assert "904" in str(error)
    (record,) = sasl_records(caplog)
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert message.startswith(f"SASL login as {ACCOUNT} failed: 904 "), message
    assert message.endswith("; aborting"), message
    assert not [r for r in caplog.records if "connecting to" in r.getMessage()][1:], "reconnected"
    with pytest.raises(AssertionError, match="not on the network"):
        account_of(observer, NICK)
    assert_no_secret(caplog, WRONG)


def test_a_wrong_password_continues_without_an_account_when_not_required(
    start_bot, observer: IRCTestClient, caplog: pytest.LogCaptureFixture
) -> None:
    start_bot(
        sasl_password_env="SASBOT_PASSWORD", env={"SASBOT_PASSWORD": WRONG}, sasl_required=False
    )
    assert account_of(observer, NICK) is None
    (record,) = sasl_records(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith(f"SASL login as {ACCOUNT} failed: 904 "), message
    assert message.endswith("; continuing without an account"), message
    assert_no_secret(caplog, WRONG)

"""Numbers in command arguments: only ASCII digits, within a bound, else the usage reply.

``str.isdigit()`` is true for ``²`` and ``٣``, and ``int()`` takes ``٣`` and a fullwidth 3 (but not
``²``): ``!trainees ²`` passed the check and raised in ``int()``, and the asker got "failed;
the error is logged". A number argument is now declared in the usage (``[page:int]``) and
the dispatcher parses it before any handler runs: ASCII digits only, 1 to
:data:`~ircbot.plugin.INT_ARG_MAX`, otherwise the usage reply. On a real ngircd with the
livechat plugin; each refusal is followed by a ``!ping`` marker the bot must answer, so
nothing else came first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ircbot.plugin import INT_ARG_MAX, Param, UsageError, parse_usage, split_args
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(60)

BOT = "udbot"
CHAN = "#udigits"
USAGE = "Usage: !trainees [page]"


def test_an_int_parameter_takes_ascii_digits_within_the_bound_only() -> None:
    params = parse_usage("[page:int]")
    assert params == (Param("page", required=False, is_int=True),)
    assert split_args(params, "12") == [12]
    assert split_args(params, "") == [None]
    assert split_args(params, str(INT_ARG_MAX)) == [INT_ARG_MAX]
    for bad in (
        "²",
        "٣",
        "\uff13",
        "1²",
        "-1",
        "+1",
        "0",
        "1.5",
        "0x10",
        "1_000",
        str(INT_ARG_MAX + 1),
    ):
        with pytest.raises(UsageError, match="whole number"):
            split_args(params, bad)


@pytest.fixture(scope="module")
def asker(
    ngircd: NgircdServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IRCTestClient]:
    database = tmp_path_factory.mktemp("digits") / "bot.db"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{database}",
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"plugins": ["livechat"], "user_burst": 1000, "user_rate": 100.0},
    )
    with BotThread(config):
        client = IRCTestClient.connect(ngircd.host, ngircd.port, "ud_asker", user="udasker")
        try:
            client.join(CHAN)
            yield client
        finally:
            client.quit(timeout=1)


def answer(client: IRCTestClient, text: str) -> str:
    client.say(CHAN, text)
    return client.expect(r"^ud_asker: ", source=BOT, target=CHAN).text.removeprefix("ud_asker: ")


@pytest.mark.parametrize("page", ["²", "٣", "\uff13", "99999999999999999999", "-1", "abc", "0"])
def test_trainees_with_a_page_that_is_no_ascii_number_gets_the_usage(
    asker: IRCTestClient, page: str
) -> None:
    reply = answer(asker, f"!trainees {page}")
    assert reply.endswith(USAGE), reply
    assert "whole number" in reply and "failed" not in reply
    assert answer(asker, f"!ping after {page}") == f"pong after {page}"


def test_trainees_with_an_ascii_page_still_answers(asker: IRCTestClient) -> None:
    assert answer(asker, "!trainees 1") == "0 ready, 0 in training, 0 on hold"
    assert answer(asker, "!trainees") == "0 ready, 0 in training, 0 on hold"

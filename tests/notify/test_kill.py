"""A SIGKILL between sending and recording: one repeat at most, with the same id.

The bot runs as a process (``python -m ircbot run``) with ``[notify]`` pointing at a real
SMTP server and a real webhook receiver. Rows are queued in its database before it starts,
as any committed transaction leaves them. With ``IRCBOT_TEST_HOLD_AFTER_SEND=1`` the sender
stops after its first successful send and before recording it, and says so in the log: the
test kills the process there, where a crash costs the most. Started again without the hook,
the bot sends that row once more, with the same Message-ID or Idempotency-Key, and records
it. A third start (after a clean stop, with one more row queued) ends on that new row's
arrival: by then the first has not been sent a third time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ircbot import outbound
from ircbot.clock import utcnow
from ircbot.courier import HOLD_ENV
from ircbot.storage import make_engine, make_session_factory, migrate, transaction
from tests.notify.conftest import HOOK_SECRET, SMTP_PASSWORD, smtp_url
from tests.support.botproc import BotProcess
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(120)


def queue(db_url: str, channel: str, n: int) -> str:
    """Queue one mail or post, as a committed transaction would; return its stable id."""
    engine = make_engine(db_url)
    try:
        migrate(engine)
        with transaction(make_session_factory(engine)) as session:
            if channel == "mail":
                row = outbound.enqueue_mail(
                    session,
                    to="carol@example.org",
                    subject=f"ping {n}",
                    body=f"number {n}\n",
                    now=utcnow(),
                    kind="test",
                )
            else:
                row = outbound.enqueue_post(
                    session, event="ready", payload={"n": n}, now=utcnow(), ref=f"test:{n}"
                )
            return row.message_id
    finally:
        engine.dispose()


@pytest.mark.parametrize("channel", ["mail", "webhook"])
def test_a_kill_between_send_and_record_repeats_once_with_the_same_id(
    channel: str,
    ngircd: NgircdServer,
    mail_server: Callable[..., Any],
    hook_server: Callable[..., Any],
    tmp_path: Path,
) -> None:
    smtp, hook = mail_server(), hook_server()
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    config = {
        "irc": {"host": ngircd.host, "port": ngircd.port, "nick": f"killbot{channel[0]}"},
        "bot": {"plugins": [], "identity": "hostmask", "log_level": "INFO"},
        "database": {"url": db_url},
        "notify": {
            "smtp_url": smtp_url(smtp),
            "mail_from": "bot@livechat.test",
            "smtp_password_env": "TEST_SMTP_PASSWORD",
            "webhook_url": hook.url,
            "webhook_secret_env": "TEST_HOOK_SECRET",
            "retry_min": 0.5,
        },
    }
    env = {
        "TEST_SMTP_PASSWORD": SMTP_PASSWORD,
        "TEST_HOOK_SECRET": HOOK_SECRET,
        HOLD_ENV: "1",
    }
    first = queue(db_url, channel, 1)

    def arrived(count: int) -> list[str]:
        """The ids received so far, once at least ``count`` have arrived."""
        if channel == "mail":
            return [m.message_id.strip("<>") for m in smtp.wait_for(count)]
        return [p["headers"]["Idempotency-Key"] for p in hook.wait_for(count)]

    bot = BotProcess(config, env, workdir=tmp_path / "bot")
    try:
        bot.start()
        bot.wait_for_log(r"holding before recording outbound 1\b", timeout=30)
        assert arrived(1) == [first]  # on the other side, not yet recorded here
        bot.kill()

        del bot.env[HOLD_ENV]
        bot.start()
        bot.wait_for_log(rf"{channel} 1 \(\w+\) sent", timeout=30)
        assert arrived(2) == [first, first]  # the one repeat, with the same id
        assert bot.terminate() == 0

        second = queue(db_url, channel, 2)
        bot.start()
        bot.wait_for_log(rf"{channel} 2 \(\w+\) sent", timeout=30)
        assert arrived(3) == [first, first, second]  # the first: recorded, not sent again
        assert (
            SMTP_PASSWORD not in bot.log_text() and HOOK_SECRET not in bot.log_text()
        )  # no secret
    finally:
        bot.close()

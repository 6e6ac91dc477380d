"""A mail server that hangs does not hold the bot: commands are answered meanwhile.

The "server" accepts the connection and never says a word, so the sender waits out its
``[notify] timeout`` (60 s here) inside the SMTP greeting. The test waits until the sender is
connected and stuck there, then asks the bot a command on a real ngircd: the answer comes
while the row is still unsent and untried, so the send cannot have been on the bot's loop.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from ircbot import outbound
from ircbot.outbound import Outbound
from ircbot.storage import transaction
from tests.support.botthread import BotThread, bot_config
from tests.support.client import IRCTestClient
from tests.support.ngircd import NgircdServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def silent_server() -> Iterator[tuple[int, threading.Event]]:
    """A listener that accepts connections and never answers; the event: one came."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    connected = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        held.append(conn)
        connected.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], connected
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_commands_are_answered_while_the_mail_server_hangs(
    ngircd: NgircdServer, silent_server: tuple[int, threading.Event], tmp_path
) -> None:
    port, connected = silent_server
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{tmp_path / 'bot.db'}",
        irc={"nick": "stallbot", "channels": ["#stall"]},
        notify={
            "smtp_url": f"smtp://127.0.0.1:{port}",
            "mail_from": "bot@livechat.test",
            "timeout": 60.0,
        },
    )
    with BotThread(config) as bot:
        client = IRCTestClient.connect(ngircd.host, ngircd.port, "stall_user")
        try:
            client.join("#stall")

            def queue() -> int:
                with transaction(bot.bot.session_factory) as session:
                    row = outbound.enqueue_mail(
                        session,
                        to="carol@example.org",
                        subject="x",
                        body="y",
                        now=bot.clock.now(),
                        kind="test",
                    )
                    session.flush()
                    row_id = row.id
                bot.bot.courier.wake()
                return row_id

            row_id = bot.call(queue)
            assert connected.wait(20), "the sender never connected"

            client.say("#stall", "!ping still here")
            client.expect(r"pong still here", source="stallbot", target="#stall")

            def unsent() -> tuple[int, object]:
                with transaction(bot.bot.session_factory) as session:
                    row = session.get(Outbound, row_id)
                    return row.attempts, row.sent_at

            assert bot.call(unsent) == (0, None)  # the send is still waiting for a greeting
        finally:
            client.quit(timeout=1)

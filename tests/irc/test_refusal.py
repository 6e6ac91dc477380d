"""One refusal type, and what a refusal keeps.

A handler that raises :class:`ircbot.Refusal` gets its text as the one reply. What the
command did after its checkpoint (rows, durable messages, replies) is undone; what it did
before (the bot learning who the speaker is) is committed. With no checkpoint nothing is
kept. The bundled plugin's refusals are the same type (``WorkflowError`` derives from it),
so no plugin needs a wrapper of its own.

The bot is real (its dispatcher, a database of each backend); the server is scripted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ircbot_plugins.livechat import workflow
from sqlalchemy import select

import ircbot
from ircbot import errors
from ircbot.outbox import OutboxMessage
from ircbot.storage import transaction
from tests.support.botthread import BotThread, bot_config
from tests.support.postgres import BACKENDS, database_url

pytestmark = pytest.mark.timeout(60)

LEARNT, LATER = "~learnt@127.0.0.1", "~later@127.0.0.1"  # recipients nobody is connected as
probe = ircbot.Plugin("refusalprobe")


@probe.command("keepsome", help="Notes the speaker, takes a checkpoint, then refuses.")
def _keepsome(ctx: ircbot.CommandContext) -> None:
    ctx.notify(LEARNT, "learnt before the checkpoint", ref="refusalprobe")
    ctx.checkpoint()
    ctx.notify(LATER, "written after the checkpoint", ref="refusalprobe")
    ctx.reply("this reply came after the checkpoint and must not be sent")
    raise ircbot.Refusal("refused after the checkpoint")


@probe.command("keepnone", help="Writes, then refuses without a checkpoint.")
def _keepnone(ctx: ircbot.CommandContext) -> None:
    ctx.notify(LATER, "written by a command without a checkpoint", ref="refusalprobe")
    ctx.session.flush()
    raise ircbot.Refusal("refused with nothing kept")


@probe.command("workflowsays", help="Refuses with the livechat plugin's own refusal type.")
def _workflowsays(ctx: ircbot.CommandContext) -> None:
    raise workflow.NotATrainee("nobody by that name is in training")


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> Iterator[str]:
    yield from database_url(request.param, tmp_path, "refusal")


def probe_rows(bot: BotThread) -> list[tuple[str, str]]:
    def read() -> list[tuple[str, str]]:
        with transaction(bot.bot.session_factory) as session:
            rows = session.execute(
                select(OutboxMessage.recipient, OutboxMessage.text)
                .where(OutboxMessage.ref == "refusalprobe")
                .order_by(OutboxMessage.id)
            )
            return [(r.recipient, r.text) for r in rows]

    return bot.call(read)


def test_the_refusal_type_is_one_and_public() -> None:
    assert issubclass(workflow.WorkflowError, ircbot.Refusal)
    assert ircbot.Refusal is errors.Refusal
    assert not hasattr(errors, "CommandError")


def test_a_refusal_undoes_the_command_back_to_its_checkpoint(url, scripted_server) -> None:
    config = bot_config(scripted_server.host, scripted_server.port, url)
    bot = BotThread(config, extra_plugins=[probe]).start(wait_joined=False)
    server = scripted_server
    try:
        server.expect_line(r"^CAP LS 302$")
        server.send(":irc.test CAP * LS :")
        server.expect_line(r"^CAP END$", skip=True)
        server.send(":irc.test 001 lcbot :Welcome")
        server.expect_line(r"^JOIN #livechat$")

        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!keepnone")
        server.expect_line(r"^PRIVMSG #livechat :amy: refused with nothing kept$")
        assert probe_rows(bot) == []

        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!keepsome")
        server.expect_line(r"^PRIVMSG #livechat :amy: refused after the checkpoint$")
        assert probe_rows(bot) == [(LEARNT, "learnt before the checkpoint")]

        server.send(":amy!~amy@127.0.0.1 PRIVMSG lcbot :!workflowsays")
        server.expect_line(r"^PRIVMSG amy :nobody by that name is in training$")
        assert not any("must not be sent" in line for line in server.lines)
        assert not any("the error is logged" in line for line in server.lines)
    finally:
        server.close_client()
        bot.stop()

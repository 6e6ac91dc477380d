"""The core bot on a real ngircd: it registers, joins and answers; it survives what users
and servers throw at it; and its durable outbox reaches people when they can read it.

One bot (``corebot`` in ``#core``) serves the tests that don't change its settings; tests that
need other settings, another server or a server that says exactly what they want start
their own. Every client has a nick of its own, so its rate-limit bucket is its own too.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from ircbot import builtin, outbox
from ircbot.clock import utcnow
from ircbot.loading import ENTRY_POINT_GROUP, installed
from ircbot.plugin import Plugin, parse_usage
from ircbot.storage import transaction
from tests.support.botthread import BotThread, bot_config
from tests.support.client import nothing_before_pong

BOT = "corebot"
CHAN = "#core"

# A tiny plugin of the test's own: a command with arguments, and one that always fails.
probe = Plugin("probe")


@probe.command("add", usage="<a> <b>", help="Add two whole numbers.")
def _add(ctx, a: str, b: str) -> None:
    ctx.reply(str(int(a) + int(b)))


@probe.command("boom", help="Always fails, so the error path can be seen.")
def _boom(ctx) -> None:
    raise RuntimeError("kaboom: this traceback belongs in the log only")


@pytest.fixture(scope="module")
def corebot(ngircd, tmp_path_factory):
    db = tmp_path_factory.mktemp("corebot") / "bot.db"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{db}",
        irc={"nick": BOT, "channels": [CHAN]},
        bot={"user_burst": 20, "user_rate": 10.0, "away_poll": 1},
    )
    with BotThread(config, extra_plugins=[probe]) as bot:
        yield bot


@pytest.fixture
def user(corebot, irc_client):
    """A client in the bot's channel: ``user("nick")``."""

    def connect(nick: str, **options):
        return irc_client(nick, channels=(CHAN,), **options)

    return connect


def assert_still_answers(client, nick: str) -> None:
    client.say(CHAN, "!ping still here")
    client.expect(rf"^{nick}: pong still here$", source=BOT, target=CHAN)


def assert_bot_said_nothing_else(client) -> None:
    """Nothing from the bot is waiting unread, nor comes before its answer to a later ping."""
    nothing_before_pong(client, BOT, command=None, private=False)


# ---------------------------------------------------------------------- basic service


def test_bot_registers_and_joins_its_channel(corebot, irc_client):
    alice = irc_client("ci_alice", channels=())
    names = alice.join(CHAN)
    assert BOT in [n.lstrip("@+") for n in names]


def test_ping_in_channel_echoes_the_argument(user):
    alice = user("ci_ping")
    alice.say(CHAN, "!ping hello there")
    alice.expect(r"^ci_ping: pong hello there$", source=BOT, target=CHAN)


def test_ping_in_private_echoes_the_argument(user):
    alice = user("ci_pm")
    alice.say(BOT, "!ping quietly")
    alice.expect(r"^pong quietly$", source=BOT, target="ci_pm")


def test_help_lists_the_commands(user):
    alice = user("ci_help")
    alice.say(BOT, "!help")
    listing = alice.expect(r"^Commands: .*\. Say !help <command> for details\.$", source=BOT)
    names = listing.text.removeprefix("Commands: ").split(".")[0].split()
    assert names == ["!ping", "!help", "!add", "!boom"]


def test_help_for_a_command_gives_usage_and_text(user):
    alice = user("ci_help2")
    alice.say(BOT, "!help ping")
    alice.expect(r"^!ping \[text\.\.\.\]: Check that the bot is alive", source=BOT)


def test_help_answers_for_every_command_the_bot_has(corebot, user):
    alice = user("ci_help3")
    for command in corebot.bot.dispatcher.declared:
        alice.say(BOT, f"!help {command.name}")
        reply = alice.expect(r"", source=BOT).text
        assert reply.startswith(corebot.bot.dispatcher.usage_line(command) + ":")
        assert command.help_text("!") in reply


def test_every_installed_command_has_help_and_a_valid_usage():
    found = installed()
    # A plugin that fails to load would be skipped silently below: it must load.
    assert found.broken == {}
    assert set(found.plugins) == {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for plugin in [builtin.plugin, *found.plugins.values()]:
        for command in plugin.commands:
            where = f"{plugin.name}: !{command.name}"
            assert command.help.strip(), f"{where} has no help"
            assert parse_usage(command.usage) == command.params, where


def test_unknown_command_is_silent_in_channel(user):
    alice = user("ci_unk")
    alice.say(CHAN, "!nosuchcommand at all")
    assert_bot_said_nothing_else(alice)
    assert_still_answers(alice, "ci_unk")


def test_unknown_command_in_private_gets_a_hint(user):
    alice = user("ci_unk2")
    alice.say(BOT, "!nosuchcommand")
    alice.expect(r"I don't know !nosuchcommand; say !help", source=BOT, target="ci_unk2")


def test_wrong_arguments_get_the_usage_line(user):
    alice = user("ci_usage")
    alice.say(CHAN, "!add 1")
    alice.expect(r"^ci_usage: missing <b>\. Usage: !add <a> <b>$", source=BOT)
    alice.say(CHAN, "!add 1 2 3")
    alice.expect(r"^ci_usage: too many arguments\. Usage: !add <a> <b>$", source=BOT)
    alice.say(CHAN, "!add 1 2")
    alice.expect(r"^ci_usage: 3$", source=BOT)


def test_a_failing_handler_gets_one_short_reply_and_the_bot_goes_on(user, caplog):
    alice = user("ci_boom")
    alice.say(CHAN, "!boom")
    reply = alice.expect(r"", source=BOT, target=CHAN)
    assert reply.text == "ci_boom: Sorry, !boom failed; the error is logged."
    assert "kaboom" not in reply.text
    logged = [r for r in caplog.records if r.exc_info and "kaboom" in str(r.exc_info[1])]
    assert len(logged) == 1
    assert "!boom failed (from ci_boom)" in logged[0].getMessage()
    assert_still_answers(alice, "ci_boom")
    assert_bot_said_nothing_else(alice)


# ----------------------------------------------------------------------- rate limits


@pytest.fixture(scope="module")
def ratebot(ngircd, tmp_path_factory):
    """A bot that lets each person 3 commands at once, then one every 100 s."""
    db = tmp_path_factory.mktemp("ratebot") / "bot.db"
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{db}",
        irc={"nick": "ratebot", "channels": ["#rate"]},
        bot={"user_burst": 3, "user_rate": 0.01},
    )
    with BotThread(config) as bot:
        yield bot


def test_a_flood_from_one_user_is_cut_off_while_others_are_served(ratebot, irc_client):
    flooder = irc_client("rl_flood", channels=("#rate",))
    other = irc_client("rl_other", channels=("#rate",))
    for n in range(1, 7):
        flooder.say("#rate", f"!ping {n}")
    for n in (1, 2, 3):
        flooder.expect(rf"^rl_flood: pong {n}$", source="ratebot")
    flooder.expect(r"too fast", command="NOTICE", source="ratebot", target="rl_flood")
    other.say("#rate", "!ping me too")
    other.expect(r"^rl_other: pong me too$", source="ratebot")
    # Pongs 4-6 would have come before the other user's answer: none did, nor a 2nd NOTICE.
    flooder.expect_none(r"pong [4-6]", source="ratebot", include_pending=True, within=0.2)
    flooder.expect_none(
        r"too fast", command="NOTICE", source="ratebot", include_pending=True, within=0.1
    )


def test_unknown_commands_in_private_count_against_the_limit(ratebot, irc_client):
    flooder = irc_client("rl_unknown", channels=())
    for n in range(1, 11):
        flooder.say("ratebot", f"!nope{n}")
    for n in (1, 2, 3):
        flooder.expect(rf"I don't know !nope{n};", source="ratebot")
    flooder.expect(r"too fast", command="NOTICE", source="ratebot")
    flooder.expect_none(source="ratebot", command=None, within=0.4, include_pending=True)


def test_chat_that_looks_like_a_command_costs_nothing(ratebot, irc_client):
    talker = irc_client("rl_chat", channels=("#rate",))
    for _ in range(5):
        talker.say("#rate", "!!! that was great")
    talker.say("#rate", "!ping")
    talker.expect(r"^rl_chat: pong$", source="ratebot")
    talker.expect_none(r"too fast", command="NOTICE", include_pending=True, within=0.2)


def test_a_ctcp_flood_gets_a_few_answers_only(ratebot, irc_client):
    flooder = irc_client("rl_ctcp", channels=())
    for n in range(1, 21):
        flooder.say("ratebot", f"\x01PING {n}\x01")
    flooder.say("ratebot", "!ping done")  # read after the 20 CTCPs, on the same connection
    flooder.expect(r"^pong done$", source="ratebot")
    answers = [
        m.text
        for m in flooder.messages
        if m.command == "NOTICE" and m.nick == "ratebot" and m.text.startswith("\x01PING")
    ]
    assert 1 <= len(answers) <= 5, answers


# ------------------------------------------------------------ connection management


def test_bot_reconnects_and_rejoins_after_the_server_restarts(ngircd_factory, irc_client, tmp_path):
    server = ngircd_factory()
    config = bot_config(
        server.host,
        server.port,
        f"sqlite:///{tmp_path}/bot.db",
        irc={"nick": "rsbot", "channels": ["#restart"]},
    )
    with BotThread(config) as bot:
        server.stop()
        server.restart()
        bot.wait_joined(timeout=10)
        alice = irc_client("rs_alice", channels=(), server=server)
        names = alice.join("#restart")
        assert "rsbot" in [n.lstrip("@+") for n in names]
        alice.say("#restart", "!ping again")
        alice.expect(r"^rs_alice: pong again$", source="rsbot")


def test_nick_taken_uses_alt_nick_then_takes_it_back(ngircd, irc_client, tmp_path):
    holder = irc_client("nickbot", channels=("#nick",))
    watcher = irc_client("nk_watch", channels=("#nick",))
    config = bot_config(
        ngircd.host,
        ngircd.port,
        f"sqlite:///{tmp_path}/bot.db",
        irc={"nick": "nickbot", "alt_nicks": ["nickbot_"], "channels": ["#nick"]},
    )
    with BotThread(config):
        watcher.expect(command="JOIN", source="nickbot_")
        holder.quit("making room")
        change = watcher.expect(command="NICK", source="nickbot_")
        assert change.trailing == "nickbot"
        watcher.say("#nick", "!ping")
        watcher.expect(r"^nk_watch: pong$", source="nickbot")


# ----------------------------------------------------------------------- hostile input


def test_bold_and_colour_codes_around_a_command_still_work(user):
    alice = user("hi_bold")
    alice.say(CHAN, "\x02!ping\x02 bold")
    alice.expect(r"^hi_bold: pong bold$", source=BOT)
    alice.say(CHAN, "\x0304,01!ping\x03 colour")
    alice.expect(r"^hi_bold: pong colour$", source=BOT)


def test_invalid_utf8_does_not_break_the_bot(user):
    alice = user("hi_bytes")
    alice.send_raw(f"PRIVMSG {CHAN} :".encode() + b"\xff\xfe\xc3( broken")
    alice.send_raw(f"PRIVMSG {CHAN} :!ping ".encode() + b"caf\xe9")
    alice.expect(r"^hi_bytes: pong caf", source=BOT)
    assert_still_answers(alice, "hi_bytes")


def test_ctcp_version_is_answered_by_notice(user):
    alice = user("hi_ver")
    alice.say(BOT, "\x01VERSION\x01")
    reply = alice.expect(r"^\x01VERSION livechat-bot", command="NOTICE", source=BOT)
    assert reply.target == "hi_ver"
    assert reply.text.endswith("\x01")
    assert_still_answers(alice, "hi_ver")


def test_ctcp_ping_is_echoed(user):
    alice = user("hi_cping")
    alice.say(BOT, "\x01PING 1700000000 42\x01")
    alice.expect(r"^\x01PING 1700000000 42\x01$", command="NOTICE", source=BOT)
    assert_still_answers(alice, "hi_cping")


def test_a_bare_cr_from_a_client_ends_its_line_at_ngircd(user):
    # ngircd cuts the line at the CR and reads the rest as a command of the client's own;
    # the bot gets "!ping one" only, answers it, and goes on.
    alice = user("hi_cr")
    alice.send_raw(f"PRIVMSG {CHAN} :!ping one\r!ping two".encode())
    alice.expect(r"^hi_cr: pong one$", source=BOT)
    assert_still_answers(alice, "hi_cr")
    assert not any("\r" in m.raw for m in alice.messages if m.nick == BOT)


@pytest.mark.parametrize("text", ["!", "!   "])
def test_an_empty_command_gets_silence(user, text):
    alice = user("hi_empty")
    alice.say(CHAN, text)
    alice.say(BOT, text)
    assert_still_answers(alice, "hi_empty")
    assert_bot_said_nothing_else(alice)


def test_a_long_ping_reply_is_split_into_lines_that_fit(user):
    alice = user("hi_long")
    words = ["ünïcödé", "€uro", "日本語", "plain"]
    argument = ""
    while len(argument.encode()) < 450:
        argument = f"{argument} {words[len(argument) % 4]}".strip()
    alice.say(CHAN, f"!ping {argument}")
    expected = f"hi_long: pong {argument}"
    pieces = []
    while " ".join(pieces) != expected:
        piece = alice.expect(r"", source=BOT, target=CHAN)
        assert len(piece.raw.encode()) + 2 <= 512
        pieces.append(piece.text)
        assert len(pieces) < 5, pieces
    assert len(pieces) >= 2
    assert_still_answers(alice, "hi_long")


# ------------------------------------------------- what ngircd won't pass: a raw server


@pytest.fixture
def raw_bot(scripted_server, tmp_path):
    """The bot registered on a scripted server (``raw_server``), which can send it any bytes."""
    config = bot_config(scripted_server.host, scripted_server.port, f"sqlite:///{tmp_path}/b.db")
    bot = BotThread(config).start(wait_joined=False)
    server = scripted_server
    server.register_bot()
    yield bot
    server.close_client()
    bot.stop()


@pytest.fixture
def raw_server(raw_bot, scripted_server):
    """The scripted server the ``raw_bot`` is registered on."""
    return scripted_server


def test_a_bare_cr_inside_a_line_cannot_inject_a_command(raw_server):
    raw_server.send(":mal!~mal@evil PRIVMSG #livechat :!ping one\rQUIT :injected")
    line = raw_server.expect_line(r"^PRIVMSG #livechat :")
    assert line == "PRIVMSG #livechat :mal: pong one QUIT :injected"
    raw_server.send(":mal!~mal@evil PRIVMSG #livechat :!ping two")
    raw_server.expect_line(r"^PRIVMSG #livechat :mal: pong two$")
    assert not any(b"\r" in raw for raw in raw_server.raw_lines)


def test_a_600_byte_line_is_survived_and_answered_within_512(raw_server):
    text = "!ping " + "x" * 594
    raw_server.send(f":mal!~mal@evil PRIVMSG #livechat :{text}".encode())
    pieces = [raw_server.expect_line(r"^PRIVMSG #livechat :")]
    while sum(p.count("x") for p in pieces) < 594:
        pieces.append(raw_server.expect_line(r"^PRIVMSG #livechat :"))
    assert all(len(p.encode()) + 2 <= 512 for p in pieces)
    raw_server.send(":mal!~mal@evil PRIVMSG #livechat :!ping after")
    raw_server.expect_line(r"^PRIVMSG #livechat :mal: pong after$")


def test_a_quit_without_a_reason_still_takes_the_user_away(raw_bot, raw_server):
    """``:nick!user@host QUIT`` with no parameter at all is legal, and the irc library's own
    handling of it fails: the bot must still forget them, and go on serving."""

    def ping(text: str) -> None:  # answered only once every line before it was handled
        raw_server.send(f":mal!~mal@evil PRIVMSG #livechat :!ping {text}")
        raw_server.expect_line(rf"^PRIVMSG #livechat :mal: pong {text}$")

    def tracked() -> bool:
        return raw_bot.call(lambda: raw_bot.bot.network.get("gone")) is not None

    raw_server.send(":gone!~gone@127.0.0.1 JOIN #livechat")
    ping("joined")
    assert tracked()
    raw_server.send(":gone!~gone@127.0.0.1 QUIT")
    ping("quit")
    assert not tracked()
    enqueue(raw_bot, "~gone@127.0.0.1", "you are ready")
    ping("after")  # the next line: no WHOIS of, or message to, someone who left


# ---------------------------------------------------------------------------- outbox


def enqueue(bot: BotThread, key: str, text: str) -> int:
    """Write a pending outbox row, as a plugin's transaction would, and tell the bot."""
    with transaction(bot.bot.session_factory) as session:
        message = outbox.enqueue(session, key, text, now=utcnow())
        session.flush()
        message_id = message.id
    bot.call(lambda: bot.bot.delivery.notified({key}))
    return message_id


def delivered_at(bot: BotThread, message_id: int):
    """The row's delivered_at, read on the bot's thread once its current turn is over (the
    row is marked in the same turn that wrote the line, a moment after the client saw it)."""

    def read():
        with transaction(bot.bot.session_factory) as session:
            return session.get(outbox.OutboxMessage, message_id).delivered_at

    return bot.call(read)


def test_outbox_message_waits_for_its_recipient_and_arrives_once(corebot, user):
    # Hostmask identity: ngircd shows user "Late" as "~Late"; keys are casemapping-folded.
    message_id = enqueue(corebot, "~ob_late@127.0.0.1", "your vouch was recorded")
    assert delivered_at(corebot, message_id) is None
    late = user("ob_late", user="Ob_Late")
    late.expect(r"^your vouch was recorded$", source=BOT, target="ob_late")
    assert delivered_at(corebot, message_id) is not None
    corebot.call(corebot.bot.delivery.sweep)
    nothing_before_pong(late, BOT, r"vouch")


def test_a_row_another_process_wrote_is_sent_by_the_next_sweep(corebot, user):
    """``ircbot trainee import`` from the shell writes rows the running bot was never told
    about: the periodic sweep reads who has something waiting, so they do not wait for a
    restart (the month's simulation found the import's pings waiting 19 hours).

    Nothing tells this bot about the row (no ``notified``, no JOIN after it): only its own
    sweep, every ``[bot] away_poll`` (1 s here), can find it. Whether a sweep already ran
    before the test looks is a matter of timing, so the test only waits for the delivery.
    """
    here = user("ob_shell")
    with transaction(corebot.bot.session_factory) as session:  # as the shell would: no notified()
        message = outbox.enqueue(session, "~ob_shell@127.0.0.1", "imported: bl_00", now=utcnow())
        session.flush()
        message_id = message.id
    here.expect(r"^imported: bl_00$", source=BOT, target="ob_shell", timeout=30)
    assert delivered_at(corebot, message_id) is not None


def test_outbox_message_for_someone_present_arrives_at_once(corebot, user):
    here = user("ob_here")
    message_id = enqueue(corebot, "~ob_here@127.0.0.1", "you are ready for review")
    here.expect(r"^you are ready for review$", source=BOT, target="ob_here", timeout=2)
    assert delivered_at(corebot, message_id) is not None


def test_outbox_messages_arrive_in_the_order_they_were_written(corebot, user):
    first = enqueue(corebot, "~ob_order@127.0.0.1", "one")
    second = enqueue(corebot, "~ob_order@127.0.0.1", "two")
    third = enqueue(corebot, "~ob_order@127.0.0.1", "three")
    reader = user("ob_order")
    texts = [reader.expect(r"", source=BOT, target="ob_order").text for _ in range(3)]
    assert texts == ["one", "two", "three"]
    assert all(delivered_at(corebot, i) is not None for i in (first, second, third))


def test_outbox_waits_while_the_recipient_is_away(corebot, user):
    away = user("ob_away")
    away.away("gone fishing")
    message_id = enqueue(corebot, "~ob_away@127.0.0.1", "welcome back")
    nothing_before_pong(away, BOT, r"welcome back")
    assert delivered_at(corebot, message_id) is None
    away.away(None)
    away.expect(r"^welcome back$", source=BOT, target="ob_away", timeout=3)
    assert delivered_at(corebot, message_id) is not None

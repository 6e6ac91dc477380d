"""Fair output: protocol lines and durable deliveries first, then replies in turns per
requester, each requester's backlog capped; and a WHOIS timeout that starts on the wire.

First the queue's logic alone, on a clock the test moves; then the resolver's deadline; then
the bot on a scripted server whose output rate is so low that the WHOIS waits in the queue
longer than its timeout; then the bot with its default settings on ngircd with its flood
penalty on: a crowd of 12 asking at once must not keep a bystander waiting more than 3 s, and
someone looping ``!history``/``!trainees`` must not delay others' answers by 2 s.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from ircbot.clock import ManualClock
from ircbot.config import BotConfig, IrcConfig
from ircbot.identity import Identity
from ircbot.network import NetworkState
from ircbot.outqueue import CUT_NOTICE, Lane, OutputQueue, Requester
from ircbot.plugin import Plugin
from ircbot.ratelimit import TokenBucket
from ircbot.resolver import Resolver
from ircbot.transport import Transport
from tests.support.botthread import BotThread, bot_config
from tests.support.crowd import CROWD_COMMANDS, HISTORY_NICK, seed_livechat

pytestmark = pytest.mark.timeout(120)


def make_queue(burst: int = 1, rate: float = 1.0, backlog: int = 10):
    clock = ManualClock()
    written: list[str] = []

    def write(line: str) -> bool:
        written.append(line)
        return True

    return (
        OutputQueue(TokenBucket(burst, rate, clock.monotonic), write, backlog=backlog),
        clock,
        written,
    )


def run_out(queue: OutputQueue, clock: ManualClock) -> None:
    """Let the queue send everything, one token at a time."""
    while (due := queue.next_due()) is not None:
        clock.advance(due)
        queue.drain()


def used_up(queue: OutputQueue) -> None:
    """Spend the bucket's tokens on a line nobody waits for."""
    while queue.bucket.take():
        pass


# ------------------------------------------------------------------------------ units


def test_protocol_lines_then_deliveries_then_replies():
    queue, clock, written = make_queue()
    used_up(queue)
    amy = Requester("amy@host", "amy")
    queue.put_reply(amy, "PRIVMSG #c :amy: one")
    queue.put("PRIVMSG coord :you were pinged", lane=Lane.PRIORITY)
    queue.put_reply(amy, "PRIVMSG #c :amy: two")
    queue.put("WHOIS bob")
    queue.put("JOIN #c")
    assert len(queue) == 5
    run_out(queue, clock)
    assert written == [
        "WHOIS bob",
        "JOIN #c",
        "PRIVMSG coord :you were pinged",
        "PRIVMSG #c :amy: one",
        "PRIVMSG #c :amy: two",
    ]


def test_a_line_goes_out_at_once_when_nothing_waits_ahead_of_it():
    queue, _clock, written = make_queue(burst=3)
    queue.put_reply(Requester("amy"), "reply")
    queue.put("PRIVMSG coord :ping", lane=Lane.PRIORITY)
    queue.put("WHOIS bob")
    assert written == ["reply", "PRIVMSG coord :ping", "WHOIS bob"]
    assert len(queue) == 0 and queue.next_due() is None


def test_replies_take_turns_across_requesters():
    queue, clock, written = make_queue()
    used_up(queue)
    amy, bob = Requester("amy"), Requester("bob")
    for n in range(1, 5):
        queue.put_reply(amy, f"amy {n}")
    for n in range(1, 4):
        queue.put_reply(bob, f"bob {n}")
    assert queue.waiting("amy") == 4 and queue.waiting("bob") == 3
    run_out(queue, clock)
    # bob had nothing waiting: his first line takes the next turn; then one line each.
    assert written == ["bob 1", "amy 1", "bob 2", "amy 2", "bob 3", "amy 3", "amy 4"]


def test_someone_with_nothing_waiting_is_answered_next_however_long_the_queue():
    queue, clock, written = make_queue()
    used_up(queue)
    crowd = [Requester(f"user{n}", f"user{n}") for n in range(12)]
    for person in crowd:
        for n in range(3):
            queue.put_reply(person, f"{person.key} {n}")
    clock.advance(1.0)
    queue.drain()  # one line for someone in the crowd
    queue.put_reply(Requester("bystander", "bystander"), "bystander: pong")
    clock.advance(1.0)
    queue.drain()
    assert written[-1] == "bystander: pong"
    run_out(queue, clock)
    assert len(written) == 12 * 3 + 1
    # Everyone's lines still came in their own order.
    for person in crowd:
        assert [w for w in written if w.startswith(f"{person.key} ")] == [
            f"{person.key} {n}" for n in range(3)
        ]


def test_a_backlog_past_the_cap_is_cut_with_one_notice():
    queue, clock, written = make_queue(backlog=3)
    used_up(queue)
    history = Requester("amy@host", "amy")
    kept = [queue.put_reply(history, f"line {n}") for n in range(1, 7)]
    assert kept == [True, True, True, False, False, False]
    assert queue.dropped == 3
    # A second answer while the first waits: no second notice, and nothing past the cap.
    assert queue.put_reply(Requester("amy@host", "amy"), "another answer") is False
    run_out(queue, clock)
    assert written == ["line 1", "line 2", "line 3", f"NOTICE amy :{CUT_NOTICE}"]
    # Once their backlog has gone, a new answer starts afresh.
    used_up(queue)
    again = Requester("amy@host", "amy")
    assert [queue.put_reply(again, f"more {n}") for n in range(1, 5)] == [True] * 3 + [False]
    run_out(queue, clock)
    assert written[4:] == ["more 1", "more 2", "more 3", f"NOTICE amy :{CUT_NOTICE}"]


def test_the_rest_of_a_cut_answer_is_dropped_even_when_room_frees_up():
    queue, clock, written = make_queue(backlog=2)
    used_up(queue)
    answer = Requester("amy", "amy")
    queue.put_reply(answer, "1")
    queue.put_reply(answer, "2")
    assert queue.put_reply(answer, "3") is False
    for _ in range(2):  # "1" and "2" go: there is room again, but not for the rest of it
        clock.advance(1.0)
        queue.drain()
    assert queue.waiting("amy") == 1  # the notice
    assert queue.put_reply(answer, "4") is False
    assert queue.put_reply(Requester("amy", "amy"), "next answer") is True
    run_out(queue, clock)
    assert written == ["1", "2", f"NOTICE amy :{CUT_NOTICE}", "next answer"]


def test_a_channel_share_is_cut_without_a_notice():
    queue, clock, written = make_queue(backlog=1)
    used_up(queue)
    channel = Requester("#c")
    assert [queue.put_reply(channel, f"news {n}") for n in range(3)] == [True, False, False]
    run_out(queue, clock)
    assert written == ["news 0"]


def test_deliveries_are_never_cut():
    queue, clock, written = make_queue(backlog=1)
    used_up(queue)
    for n in range(5):
        queue.put(f"PRIVMSG coord :ping {n}", lane=Lane.PRIORITY)
    run_out(queue, clock)
    assert written == [f"PRIVMSG coord :ping {n}" for n in range(5)]


def test_clear_forgets_lanes_turns_and_cuts():
    queue, clock, written = make_queue(backlog=1)
    used_up(queue)
    amy = Requester("amy", "amy")
    queue.put("WHOIS x")
    queue.put("PRIVMSG coord :p", lane=Lane.PRIORITY)
    queue.put_reply(amy, "a")
    queue.put_reply(amy, "b")  # cut: the notice waits too
    assert queue.clear() == 4
    assert len(queue) == 0 and queue.next_due() is None
    clock.advance(1.0)
    assert queue.put_reply(amy, "after") is True  # same answer object, but a new connection
    assert written == ["after"]


def test_the_pieces_of_a_long_line_count_against_their_requester():
    clock = ManualClock()
    transport = Transport(
        IrcConfig(flood_burst=1, flood_rate=1.0),
        sasl_password=None,
        clock=clock.monotonic,
        reply_backlog=3,
    )
    written: list[str] = []

    def write(line: str) -> bool:
        written.append(line)
        return True

    transport.queue.write = write
    used_up(transport.queue)
    amy = Requester("amy@host", "amy")
    transport.say("PRIVMSG", "amy", "word " * 400, requester=amy)  # about 2,000 bytes: 5 pieces
    assert transport.queue.waiting("amy@host") == 3 + 1  # three pieces and the notice
    delivered: list[str] = []
    transport.say("PRIVMSG", "coord", "ping", lambda: delivered.append("ping"), lane=Lane.PRIORITY)
    transport.say("PRIVMSG", "#c", "announcement")  # no requester: the channel's own share
    assert transport.queue.waiting("#c") == 1
    run_out(transport.queue, clock)
    assert written[0] == "PRIVMSG coord :ping" and delivered == ["ping"]
    assert written[-1] == f"NOTICE amy :{CUT_NOTICE}"
    assert sum(line.startswith("PRIVMSG amy :word") for line in written) == 3


# ------------------------------------------------------------ the resolver's deadline


def test_a_whois_timeout_starts_when_the_line_is_written():
    clock = ManualClock()
    sent: list[tuple[str, object]] = []
    resolver = Resolver(
        NetworkState(["#c"]),
        lambda line, on_sent: sent.append((line, on_sent)),
        clock.monotonic,
        timeout=2.0,
    )
    results: list[object] = []
    resolver.resolve(["bob"], lambda r: results.append(r.get("bob", "missing")))
    assert [line for line, _ in sent] == ["WHOIS bob"]
    clock.advance(30.0)  # queued behind others for a long time: not failed yet
    resolver.expire()
    assert results == []
    sent[0][1]()  # now on the socket: the timeout starts here
    clock.advance(1.9)
    resolver.expire()
    assert results == []
    clock.advance(0.1)
    resolver.expire()
    assert results == [None]


def test_a_whois_that_is_never_written_fails_in_the_end():
    clock = ManualClock()
    resolver = Resolver(NetworkState(["#c"]), lambda line, on_sent: None, clock.monotonic, 2.0)
    results: list[object] = []
    resolver.resolve(["bob"], lambda r: results.append(r.get("bob", "missing")))
    clock.advance(60.0)
    resolver.expire()
    assert results == []
    clock.advance(600.0)
    resolver.expire()
    assert results == [None]


# ------------------------------------------------------------- on a scripted server

probe = Plugin("fairprobe")
calls: list[object] = []


@probe.command("secret", identified=True, help="Needs to know who is asking.")
def _secret(ctx) -> None:
    calls.append(ctx.sender)
    ctx.reply("secret told")


def test_a_whois_waiting_longer_than_its_timeout_in_the_queue_still_counts(
    scripted_server, tmp_path
):
    """One line every 4 s, a 1 s WHOIS timeout: queued at once, the WHOIS leaves about 4 s
    later, and its answer, right after that, is still in time."""
    calls.clear()
    timeout, rate = 1.0, 0.25
    config = bot_config(
        scripted_server.host,
        scripted_server.port,
        f"sqlite:///{tmp_path}/b.db",
        irc={"flood_burst": 2, "flood_rate": rate},
        bot={"identity": "account", "whois_timeout": timeout},
    )
    bot = BotThread(config, extra_plugins=[probe]).start(wait_joined=False)
    try:
        server = scripted_server
        server.register_bot()  # JOIN and WHO took both tokens
        asked = time.monotonic()
        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!secret")
        server.expect_line(r"^WHOIS amy$", timeout=1 / rate + 5)
        assert time.monotonic() - asked > 2 * timeout  # it waited in the queue that long
        server.send(":irc.test 311 lcbot amy ~amy 127.0.0.1 * :Amy")
        server.send(":irc.test 330 lcbot amy amyacct :is logged in as")
        server.send(":irc.test 318 lcbot amy :End of /WHOIS list.")
        server.expect_line(r"^PRIVMSG #livechat :amy: secret told$", timeout=1 / rate + 5)
        assert len(calls) == 1 and isinstance(calls[0], Identity)
        assert calls[0].account == "amyacct"
    finally:
        scripted_server.close_client()
        bot.stop()


# ---------------------------------------------------------------------------- on ngircd


def default_bot(server, tmp_path) -> BotThread:
    """The bot with every output and per-person setting at its default, livechat loaded on a
    database where ``!history`` sends its full 31 lines."""
    url = f"sqlite:///{tmp_path}/bot.db"
    seed_livechat(url)
    irc, bot = IrcConfig(), BotConfig()
    config = bot_config(
        server.host,
        server.port,
        url,
        irc={"flood_burst": irc.flood_burst, "flood_rate": irc.flood_rate},
        bot={
            "plugins": ["livechat"],
            "whois_timeout": bot.whois_timeout,
            "log_level": "INFO",
        },
    )
    return BotThread(config)


class Drops:
    """Disconnects of the bot, seen from its own thread."""

    def __init__(self, bot: BotThread) -> None:
        self.times: list[float] = []
        bot.bot.transport.reactor.add_global_handler(
            "disconnect", lambda connection, event: self.times.append(time.monotonic())
        )


def assert_still_connected(bot: BotThread, drops: Drops, client) -> None:
    client.say("#livechat", "!ping still here")
    client.expect(rf"^{client.current_nick}: pong still here$", source="lcbot", timeout=30)
    assert drops.times == [] and bot.call(lambda: bot.bot.transport.registered)


def test_a_bystander_is_answered_within_3s_while_a_crowd_of_12_asks_at_once(
    ngircd_factory, irc_client, tmp_path
):
    server = ngircd_factory(flood_penalty=True)
    bot = default_bot(server, tmp_path)
    drops = Drops(bot)
    with bot:
        irc_client(HISTORY_NICK, server=server)  # on IRC: the bot needs no WHOIS for them
        crowd = [irc_client(f"crowd{n}", server=server) for n in range(12)]
        bystander = irc_client("bystander", server=server)
        burst = "".join(f"PRIVMSG #livechat :{c}\r\n" for c in CROWD_COMMANDS)
        for person in crowd:
            person.send_raw(burst, crlf=False)
        time.sleep(0.5)  # the scenario: the bystander asks half a second after the crowd
        asked = time.monotonic()
        bystander.say("#livechat", "!ping bystander")
        bystander.expect(r"^bystander: pong bystander$", source="lcbot", timeout=30)
        waited = time.monotonic() - asked
        assert waited < 3.0, f"the bystander waited {waited:.1f} s"
        # Everyone in the crowd gets a first answer soon too: theirs was a first turn.
        for person in crowd:
            person.expect(rf"^{person.current_nick}: Commands: ", source="lcbot", timeout=40)
        assert_still_connected(bot, drops, bystander)


@pytest.mark.parametrize("trainee", ["online", "offline"])
def test_a_history_loop_delays_others_by_under_2s(ngircd_factory, irc_client, tmp_path, trainee):
    server = ngircd_factory(flood_penalty=True)
    bot = default_bot(server, tmp_path)
    drops = Drops(bot)
    with bot:
        # Online, the bot needs no WHOIS for them. Offline, it asks once: ngircd holds the
        # bot's lines ~3 s after each WHOIS, so the "nobody has that nick" answer is believed
        # for a while (resolver.OFFLINE_TTL) rather than asked again at every !history.
        if trainee == "online":
            irc_client(HISTORY_NICK, server=server)
        looper = irc_client("looper", server=server)
        others = [irc_client(f"other{n}", server=server) for n in range(2)]
        stop = threading.Event()

        def loop() -> None:
            commands = [f"!history {HISTORY_NICK}", "!trainees"]
            n = 0
            while not stop.wait(0 if n == 0 else 2.05):  # the pace the per-person limit allows
                looper.say("#livechat", commands[n % 2])
                n += 1

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            looper.expect(r"events, sent privately$", source="lcbot", timeout=10)
            waits = []
            for n in range(8):
                other = others[n % 2]
                asked = time.monotonic()
                other.say("#livechat", f"!ping probe {n}")
                other.expect(rf"^{other.current_nick}: pong probe {n}$", source="lcbot", timeout=30)
                waits.append(time.monotonic() - asked)
        finally:
            stop.set()
            thread.join(5)
        assert max(waits) < 2.0, waits
        # The looper was told their answers are cut short, and not once per line.
        looper.expect(rf"^{re.escape(CUT_NOTICE)}$", command="NOTICE", source="lcbot", timeout=15)
        assert_still_connected(bot, drops, others[0])

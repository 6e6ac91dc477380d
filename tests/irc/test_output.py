"""The output queue: every line through a token bucket, in order, never sleeping; the lines
that keep the connection alive (PONG, CAP) never wait behind it.

First the queue alone on a clock the test moves, then the bot on a scripted server with an
output rate so low that its queue stays full, then on ngircd with its flood penalty on and
the bot's default ``flood_burst``/``flood_rate``.
"""

from __future__ import annotations

import itertools
import time

import pytest

from ircbot.clock import ManualClock
from ircbot.config import IrcConfig
from ircbot.outqueue import OutputQueue
from ircbot.plugin import Plugin
from ircbot.ratelimit import TokenBucket
from tests.support.botthread import BotThread, bot_config

pytestmark = pytest.mark.timeout(90)


def make_queue(burst: int = 2, rate: float = 2.0, *, written: bool = True):
    """A queue whose writes (and on_sent calls) land in one list, in the order they happen."""
    clock = ManualClock()
    events: list[str] = []

    def write(line: str) -> bool:
        events.append(f"write {line}")
        return written

    return OutputQueue(TokenBucket(burst, rate, clock.monotonic), write), clock, events


def sent_callback(events: list[str], line: str):
    return lambda: events.append(f"sent {line}")


# ------------------------------------------------------------------------------ units


def test_the_burst_goes_out_at_once_then_one_line_per_token():
    queue, clock, events = make_queue(burst=2, rate=2.0)
    for line in "abcde":
        queue.put(line)
    assert events == ["write a", "write b"]
    assert len(queue) == 3
    assert queue.next_due() == pytest.approx(0.5)
    clock.advance(0.49)
    queue.drain()  # not due yet: nothing goes out early
    assert events == ["write a", "write b"]
    assert queue.next_due() == pytest.approx(0.01)
    clock.advance(0.01)
    queue.drain()
    assert events[2:] == ["write c"]
    assert queue.next_due() == pytest.approx(0.5)
    clock.advance(10)  # a long pause refills the bucket to its burst, never above
    queue.drain()
    assert events[3:] == ["write d", "write e"]
    assert queue.next_due() is None
    queue.put("f")  # d and e took the two tokens the pause gave back: f waits
    assert events[5:] == []
    assert queue.next_due() == pytest.approx(0.5)
    clock.advance(0.5)
    queue.drain()
    assert events[5:] == ["write f"]


def test_a_new_line_never_overtakes_one_that_waits():
    queue, clock, events = make_queue(burst=1, rate=1.0)
    queue.put("first")
    queue.put("second")  # no token: waits
    clock.advance(1.0)  # a token is back, but "second" waits for it, not "third"
    queue.put("third")
    assert events == ["write first"]
    queue.drain()
    assert events == ["write first", "write second"]
    clock.advance(1.0)
    queue.drain()
    assert events == ["write first", "write second", "write third"]
    assert len(queue) == 0


def test_on_sent_runs_right_after_its_own_line_is_written():
    queue, clock, events = make_queue(burst=1, rate=1.0)
    queue.put("now", sent_callback(events, "now"))
    queue.put("later", sent_callback(events, "later"))
    queue.put("last")
    assert events == ["write now", "sent now"]  # "later" waits, and so does its callback
    clock.advance(1.0)
    queue.drain()
    assert events == ["write now", "sent now", "write later", "sent later"]
    clock.advance(1.0)
    queue.drain()
    assert events[-1] == "write last"


def test_on_sent_is_not_called_for_a_line_that_could_not_be_written():
    queue, clock, events = make_queue(burst=1, rate=1.0, written=False)
    queue.put("lost", sent_callback(events, "lost"))
    queue.put("queued", sent_callback(events, "queued"))
    clock.advance(1.0)
    queue.drain()
    assert events == ["write lost", "write queued"]


def test_clear_drops_what_waits_and_nothing_is_due_after():
    queue, clock, events = make_queue(burst=1, rate=1.0)
    for line in "abc":
        queue.put(line, sent_callback(events, line))
    assert queue.clear() == 2
    assert queue.next_due() is None
    clock.advance(10)
    queue.drain()
    queue.put("d")
    assert events == ["write a", "sent a", "write d"]


# ------------------------------------------------------------- on a scripted server


def start(server, tmp_path, **irc) -> BotThread:
    config = bot_config(
        server.host,
        server.port,
        f"sqlite:///{tmp_path}/b.db",
        irc=irc,
        bot={"user_burst": 50, "user_rate": 10.0},
    )
    bot = BotThread(config).start(wait_joined=False)
    server.register_bot(caps="multi-prefix")
    return bot


def test_pong_and_cap_skip_a_full_queue(scripted_server, tmp_path):
    # Two tokens (JOIN and WHO took them), then one every 20 s: the queue stays full.
    bot = start(scripted_server, tmp_path, flood_burst=2, flood_rate=0.05)
    try:
        server = scripted_server
        for n in range(1, 5):
            server.send(f":amy!~amy@127.0.0.1 PRIVMSG #livechat :!ping {n}")
        server.send(":amy!~amy@127.0.0.1 PRIVMSG #livechat :!ping marker")
        # The fifth reply is queued only once the line before it was read: wait for it.
        deadline = time.monotonic() + 5
        while bot.call(lambda: len(bot.bot.transport.queue)) < 5:
            assert time.monotonic() < deadline, "the replies never queued up"
            time.sleep(0.02)  # polling interval of a bounded wait
        started = time.monotonic()
        server.send(":irc.test PING :tok-42")
        server.expect_line(r"^PONG :?tok-42$")  # the very next line...
        server.send(":irc.test CAP lcbot NEW :away-notify")
        server.expect_line(r"^CAP REQ :away-notify$")
        assert time.monotonic() - started < 10  # ...at once: a queued line waits 20 s
        assert bot.call(lambda: len(bot.bot.transport.queue)) == 5  # still waiting
        assert not any(line.startswith("PRIVMSG") for line in server.lines)
    finally:
        scripted_server.close_client()
        bot.stop()


def test_queued_lines_leave_when_due_not_at_the_next_idle_tick(scripted_server, tmp_path):
    rate = 5.0  # one line every 0.2 s after a burst of 2; the idle loop wakes every 1 s
    bot = start(scripted_server, tmp_path, flood_burst=2, flood_rate=rate)
    try:
        server = scripted_server
        time.sleep(2 / rate + 0.1)  # let JOIN's and WHO's tokens come back
        for n in range(1, 7):
            server.send(f":amy!~amy@127.0.0.1 PRIVMSG #livechat :!ping {n}")
        arrivals = []
        for n in range(1, 7):
            server.expect_line(rf"^PRIVMSG #livechat :amy: pong {n}$")
            arrivals.append(time.monotonic())
        # Lines are paced at the rate (a lower bound, which load cannot break), and leave when
        # due: at the idle tick (1 s) the four paced lines would take 4 s, not 0.8 s.
        gaps = [b - a for a, b in itertools.pairwise(arrivals[1:])]
        assert all(0.9 / rate <= gap for gap in gaps), gaps
        assert arrivals[-1] - arrivals[0] < 2.5, gaps
    finally:
        scripted_server.close_client()
        bot.stop()


# ---------------------------------------------------------------------------- on ngircd

many = Plugin("manyprobe")


@many.command("lines", usage="<count>", help="Answer with that many lines.")
def _lines(ctx, count: str) -> None:
    for n in range(1, int(count) + 1):
        ctx.reply(f"line {n} of {count}")


def test_default_output_rate_stays_under_ngircds_penalty(ngircd_factory, irc_client, tmp_path):
    """ngircd (penalty on) lets a client send 3 lines at once, then about 3 a second, and
    holds back, never drops, what comes faster; it has no "Excess Flood" disconnect. The
    defaults (a burst of 4, then 1 a second) must get 20 replies through in order with the
    bot still connected, and after the first burst ngircd must never have to hold a line.
    (The per-person backlog cap is raised to keep the one 20-line answer whole: the cap has
    tests of its own in test_output_fairness.py.)"""
    defaults = IrcConfig()
    server = ngircd_factory(flood_penalty=True)
    config = bot_config(
        server.host,
        server.port,
        f"sqlite:///{tmp_path}/bot.db",
        irc={
            "nick": "floodbot",
            "channels": ["#flood"],
            "flood_burst": defaults.flood_burst,
            "flood_rate": defaults.flood_rate,
        },
        bot={"reply_backlog": 20},
    )
    bot = BotThread(config, extra_plugins=[many])
    written: dict[str, float] = {}
    write = bot.bot.transport.queue.write

    def timed_write(line: str) -> bool:
        written[line] = time.monotonic()
        return write(line)

    bot.bot.transport.queue.write = timed_write
    drops: list[float] = []
    bot.bot.transport.reactor.add_global_handler(
        "disconnect", lambda connection, event: drops.append(time.monotonic())
    )
    with bot:
        alice = irc_client("fl_alice", channels=("#flood",), server=server)
        deadline = time.monotonic() + defaults.flood_burst / defaults.flood_rate + 2
        while not bot.call(bot.bot.transport.queue.bucket.is_full):  # JOIN's and WHO's back
            assert time.monotonic() < deadline, "the bot's bucket never refilled"
            time.sleep(0.05)  # polling interval of a bounded wait
        count = 20
        alice.say("#flood", f"!lines {count}")
        lags = []
        for n in range(1, count + 1):
            text = f"fl_alice: line {n} of {count}"
            alice.expect(rf"^{text}$", source="floodbot", timeout=5)
            lags.append(time.monotonic() - written[f"PRIVMSG #flood :{text}"])
        span = max(written.values()) - min(
            t for line, t in written.items() if line.endswith(f"line 1 of {count}")
        )
        # The bot paced itself: a burst, then one line per token.
        expected = (count - defaults.flood_burst) / defaults.flood_rate
        assert span >= expected - 0.2, span
        # ngircd held back at most one second within the burst, and nothing after it.
        burst, rest = lags[: defaults.flood_burst], lags[defaults.flood_burst :]
        assert max(burst) < 1.5, lags
        assert max(rest) < 0.5, lags
        alice.say("#flood", "!ping after")
        alice.expect(r"^fl_alice: pong after$", source="floodbot")
        assert drops == [] and bot.bot.transport.registered
        assert "exhausted" not in server.log_text()

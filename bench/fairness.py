"""Fairness benchmark: how long a bystander waits while others keep the bot's output busy.

Run: ``python bench/fairness.py``. ``--source DIR`` runs the bot from another checkout of
the project (for example ``git archive main | tar -x -C DIR``) with this same harness, to
measure the code before a change beside the code after it.

Everything runs with the bot's default output and per-person settings (``flood_burst``,
``flood_rate``, ``user_burst``, ``user_rate``, ``reply_backlog``), the ``livechat`` plugin
loaded, hostmask identities, against its own ngircd with its flood penalty ON, so the
server throttles the clients too (about 3 lines at once, then one a second each). Two
scenarios, each on a fresh server and bot:

* **crowd**: 12 people each send 8 commands at once (``!help``, ``!ping``, ``!help ping``,
  ``!trainees``, ``!history``...), and a bystander's ``!ping`` follows 0.5 s later.
  Printed: how long the bystander waited for the answer (target: under 3 s), and whether the
  bot stayed connected (no disconnect in its log, and it still answers a last ``!ping``).
* **loop**: one person alternates ``!history`` (31 lines) and ``!trainees`` as fast as the
  bot's per-person limit lets them, for 20 s, while three others each ``!ping`` every few
  seconds. Printed: the others' waits, median and worst (target: worst under 2 s).
* **loop-offline**: the same, but the trainee whose history is asked is not on IRC, so each
  ``!history`` costs a WHOIS, and ngircd holds a client's next lines about 3 s after a WHOIS
  (its penalty for the command): this shows what the server's penalty adds, which no order
  of the bot's own queue can take away.

The trainee is in the channel in the first two, as in the tests, so that the figures are
those of the bot's output queue.

Waits longer than ``--give-up`` seconds are printed as ``>N`` (the old single queue can take
minutes to drain). Nothing is asserted: tests/irc/test_output_fairness.py holds the pass/fail
checks; this prints the figures.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import BotUnderTest, NgircdServer, RawClient, cpu_note

from tests.support.crowd import CROWD_COMMANDS, HISTORY_NICK, seed_livechat

CHANNEL = "#livechat"
BOT = "fairbot"
CROWD = 12


def bot_config(server: NgircdServer, url: str) -> dict:
    return {
        "irc": {"host": server.host, "port": server.port, "nick": BOT, "channels": [CHANNEL]},
        "bot": {"identity": "hostmask", "plugins": ["livechat"], "log_level": "INFO"},
        "database": {"url": url},
    }


def source_env(source: Path | None) -> dict[str, str] | None:
    """An environment that imports the bot's packages from another checkout, if given."""
    if source is None:
        return None
    paths = source / ".bench-path"
    paths.mkdir(exist_ok=True)
    for package, folder in {
        "ircbot": "ircbot",
        "ircbot_plugins": "plugins",
        "ircbot_migrations": "alembic",
    }.items():
        link = paths / package
        if not link.exists():
            link.symlink_to(source.resolve() / folder)
    return {**os.environ, "PYTHONPATH": str(paths)}


@contextmanager
def running_bot(
    source: Path | None, *, trainee_present: bool = True
) -> Iterator[tuple[NgircdServer, BotUnderTest, RawClient]]:
    """A fresh ngircd (penalty on), a seeded database, the bot, and a watcher in the channel
    (and the trainee with the long history, unless told otherwise)."""
    with ExitStack() as stack:
        server = stack.enter_context(NgircdServer(flood_penalty=True))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fairness-")))
        url = f"sqlite:///{folder}/bot.db"
        seed_livechat(url)
        bot = BotUnderTest(bot_config(server, url), env=source_env(source))
        stack.callback(bot.cleanup)
        watcher = RawClient(server.host, server.port, "watcher")
        stack.callback(watcher.close)
        watcher.send(f"JOIN {CHANNEL}")
        watcher.wait_for(b" 366 ")
        if trainee_present:
            trainee = RawClient(server.host, server.port, HISTORY_NICK)
            stack.callback(trainee.close)
            trainee.send(f"JOIN {CHANNEL}")
            trainee.wait_for(b" 366 ")
        bot.start()
        try:
            watcher.wait_for(f":{BOT}!".encode() + b"", timeout=20)
        except (TimeoutError, AssertionError):
            raise SystemExit(f"the bot never joined; its log:\n{bot.log_tail()}") from None
        yield server, bot, watcher


def joined(server: NgircdServer, stack: ExitStack, nick: str) -> RawClient:
    client = RawClient(server.host, server.port, nick, quickack=True)
    stack.callback(client.close)
    client.send(f"JOIN {CHANNEL}")
    client.wait_for(b" 366 ")
    return client


def wait_reply(client: RawClient, text: bytes, give_up: float, others: list[RawClient]) -> float:
    """Seconds until ``text`` arrives for ``client`` (inf past ``give_up``); others drained."""
    start = time.monotonic()
    deadline = start + give_up
    while True:
        while b"\r\n" in client.buf:
            line, client.buf = client.buf.split(b"\r\n", 1)
            if line.startswith(b"PING "):
                client.sock.sendall(b"PONG " + line[5:] + b"\r\n")
            elif line.endswith(text):
                return time.monotonic() - start
        left = deadline - time.monotonic()
        if left <= 0:
            return float("inf")
        ready, _, _ = select.select([client.sock, *(o.sock for o in others)], [], [], left)
        for other in others:
            if other.sock in ready:
                other.drain()
        if client.sock in ready:
            client.buf += client.recv()


def disconnected(bot: BotUnderTest) -> bool:
    return "disconnected:" in (bot.dir / "bot.log").read_text(errors="replace")


def crowd(source: Path | None, give_up: float) -> dict[str, object]:
    with running_bot(source) as (server, bot, watcher), ExitStack() as stack:
        people = [joined(server, stack, f"crowd{n}") for n in range(CROWD)]
        bystander = joined(server, stack, "bystander")
        payloads = [
            "".join(f"PRIVMSG {CHANNEL} :{c}\r\n" for c in CROWD_COMMANDS).encode() for _ in people
        ]
        for person, payload in zip(people, payloads, strict=True):
            person.sock.sendall(payload)
        sent = time.monotonic()
        time.sleep(0.5)  # the scenario: the bystander asks half a second later
        watcher.drain()
        bystander.send(f"PRIVMSG {CHANNEL} :!ping bystander")
        lag = (time.monotonic() - sent) - 0.5
        wait = wait_reply(bystander, b"bystander: pong bystander", give_up, [*people, watcher])
        # Still there, still answering: a last ping once the crowd's backlog has gone.
        bystander.send(f"PRIVMSG {CHANNEL} :!ping last")
        last = wait_reply(bystander, b"bystander: pong last", 4 * give_up, [*people, watcher])
        return {
            "bystander wait (s)": wait,
            "sent late by (s)": lag,
            "last ping answered": last != float("inf"),
            "disconnected": disconnected(bot),
        }


def loop(
    source: Path | None, give_up: float, duration: float = 20.0, *, offline: bool = False
) -> dict[str, object]:
    with (
        running_bot(source, trainee_present=not offline) as (server, bot, watcher),
        ExitStack() as stack,
    ):
        looper = joined(server, stack, "looper")
        others = [joined(server, stack, f"other{n}") for n in range(3)]
        commands = [f"!history {HISTORY_NICK}", "!trainees"]
        start = time.monotonic()
        next_loop, sent_loop = start, 0
        next_probe, probe = start + 1.0, 0
        waiting: dict[int, tuple[bytes, float]] = {}
        waits: list[float] = []
        readers = {c.sock: c for c in [looper, watcher, *others]}
        while time.monotonic() < start + duration or waiting:
            now = time.monotonic()
            if now > start + duration + give_up:
                waits += [float("inf")] * len(waiting)
                break
            if now >= next_loop and now < start + duration:
                looper.send(f"PRIVMSG {CHANNEL} :{commands[sent_loop % 2]}")
                sent_loop += 1
                next_loop = now + 2.05  # just within the default 0.5 commands/s per person
            if now >= next_probe and now < start + duration:
                who = probe % len(others)
                if who not in waiting:
                    others[who].send(f"PRIVMSG {CHANNEL} :!ping probe{probe}")
                    waiting[who] = (f"other{who}: pong probe{probe}".encode(), now)
                probe += 1
                next_probe = now + 1.5
            timeout = max(0.0, min(next_loop, next_probe) - now) if now < start + duration else 0.2
            ready, _, _ = select.select(list(readers), [], [], timeout)
            for sock in ready:
                client = readers[sock]
                client.buf += client.recv()
                *lines, client.buf = client.buf.split(b"\r\n")
                for line in lines:
                    if line.startswith(b"PING "):
                        client.sock.sendall(b"PONG " + line[5:] + b"\r\n")
                    elif client in others:
                        who = others.index(client)
                        if who in waiting and line.endswith(waiting[who][0]):
                            waits.append(time.monotonic() - waiting.pop(who)[1])
        return {
            "loop commands sent": sent_loop,
            "probes": len(waits),
            "others' wait median (s)": statistics.median(waits) if waits else float("nan"),
            "others' wait worst (s)": max(waits) if waits else float("nan"),
            "disconnected": disconnected(bot),
        }


def show(value: object, give_up: float) -> str:
    if isinstance(value, float):
        return f">{give_up:.0f}" if value == float("inf") else f"{value:.2f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="run the bot from this checkout instead")
    parser.add_argument("--give-up", type=float, default=60.0, help="longest wait measured (s)")
    scenarios = {
        "crowd": crowd,
        "loop": loop,
        "loop-offline": lambda source, give_up: loop(source, give_up, offline=True),
    }
    parser.add_argument("--only", choices=list(scenarios), help="run one scenario")
    args = parser.parse_args()
    label = f"bot from {args.source}" if args.source else "bot from this checkout"
    print(f"# fairness.py: {label}; ngircd flood penalty on, default bot settings; {cpu_note()}")
    for name, scenario in scenarios.items():
        if args.only and args.only != name:
            continue
        figures = scenario(args.source, args.give_up)
        print(f"## {name}")
        for key, value in figures.items():
            print(f"  {key:28} {show(value, args.give_up)}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

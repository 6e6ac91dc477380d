"""Clock-jump benchmark: what a suspend, a paused VM or a clock step costs the bot.

Run: ``python bench/clockjump.py [--jump +30h --jump +360h]``. Needs Debian's ``faketime``
and ``libfaketime``. For each jump it starts its own ngircd and the real bot as a process
(default settings, the livechat plugin, hostmask identities, a SQLite file) with libfaketime
preloaded, tells the story up to a trainee ready for promotion, then moves the bot's clocks
(wall and monotonic) forward by the jump while it runs, and prints:

* the CPU time the bot process used from the jump until it answered again (``/proc`` utime +
  stime);
* the time from the jump until the bot answered a coordinator's ``!ping``, sent once the bot
  had seen the jump (its log shows the first run of the timers job since) and again every
  second until answered (and at once when it rejoins), and until it was back in the channel
  if it reconnected (the jump looks like a silent server: "no data from the server for N s");
* how many SLA reminders the coordinator got for the missed time, counted up to the answer to
  a marker ``!ping`` sent after the first one, and the trainee's reminder count in the
  database: one of each, however long the jump.

Targets: back and answering within 3 s, under 0.5 s of CPU, one reminder.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import NgircdServer, RawClient, cpu_note

from tests.support.botproc import BotProcess
from tests.support.faketime import FakeTime, cpu_seconds

BOT = "cjbot"
CHAN = "#clockjump"
DEBUG = False


def config(server: NgircdServer, db: Path) -> dict:
    return {
        "irc": {"host": server.host, "port": server.port, "nick": BOT, "channels": [CHAN]},
        "bot": {"identity": "hostmask", "plugins": ["livechat"], "log_level": "INFO"},
        "database": {"url": f"sqlite:///{db}"},
        "livechat": {
            "threshold": 2,
            "helpers": ["*!~cj_help1@127.0.0.1", "*!~cj_help2@127.0.0.1"],
            "coordinators": ["*!~cj_coord@127.0.0.1"],
        },
    }


def is_bot_join(line: bytes) -> bool:
    return line.startswith(f":{BOT}!".encode()) and b" JOIN " in line


def said(client: RawClient, text: str, needle: bytes, target: str = CHAN) -> bytes:
    client.send(f"PRIVMSG {target} :{text}")
    return client.wait_for(needle, timeout=15)


def ready_trainee(server: NgircdServer) -> RawClient:
    """The story up to a ready trainee; returns the coordinator's client (pinged already)."""
    coord = RawClient(server.host, server.port, "cj_coord")
    people = [RawClient(server.host, server.port, n) for n in ("cj_train", "cj_help1", "cj_help2")]
    for client in [coord, *people]:
        client.send(f"JOIN {CHAN}")
        client.wait_for(b" 366 ")
    trainee, help1, help2 = people
    said(trainee, "!newhelper", b"trainee")
    said(help1, "!vouch cj_train", b"cj_help1:")
    said(help2, "!vouch cj_train", b"cj_help2:")
    coord.wait_for(b"PRIVMSG cj_coord :cj_train (")  # "cj_train (~ident@host) is ready ..."
    for client in people:
        client.close()
    return coord


def jump_once(offset: str) -> dict[str, float]:
    with NgircdServer() as server, tempfile.TemporaryDirectory(prefix="bench-jump-") as tmp:
        clock = FakeTime(tmp)
        db = Path(tmp) / "bot.db"
        bot = BotProcess(config(server, db), env=clock.env(), workdir=Path(tmp) / "bot")
        bot.start()
        try:
            bot.wait_for_log(r"joined #", timeout=60)
            coord = ready_trainee(server)
            # A quiet moment, so that the jump lands while the bot waits for the server, as a
            # suspend would (with traffic at that instant it sees a line first and stays on).
            time.sleep(2)
            coord.drain()
            cpu0 = cpu_seconds(bot.pid)
            clock.set(offset)
            t0 = time.monotonic()
            # Ping only once the bot has seen the jump (its first run of the timers job since
            # then is logged): a ping read in the same turn could be answered before it.
            bot.wait_for_log(r"timers: ", timeout=600)
            seen = time.monotonic() - t0
            back = answered = None
            reminders = 0
            marker_sent = False
            next_ping, n = time.monotonic(), 0
            while True:
                now = time.monotonic()
                if now - t0 > 600:
                    raise TimeoutError(f"no answer 600 s after {offset}:\n{bot._log_tail()}")
                if answered is None and now >= next_ping:
                    n += 1  # again every second while the bot is away (401 No such nick)
                    coord.send(f"PRIVMSG {BOT} :!ping jump {n}")
                    next_ping = now + 1.0
                try:
                    line = next(coord.lines(0.05))
                except TimeoutError:
                    continue
                if DEBUG:
                    print(f"{time.monotonic() - t0:6.2f} {line[:100]!r}")
                if is_bot_join(line):
                    back = back or time.monotonic() - t0
                    next_ping = time.monotonic()  # and ask at once
                elif b"Reminder:" in line:
                    reminders += 1
                elif b":pong jump" in line and answered is None:
                    answered = time.monotonic() - t0
                    cpu = cpu_seconds(bot.pid) - cpu0
                elif b":pong marker" in line:
                    break
                if answered is not None and reminders and not marker_sent:
                    coord.send(f"PRIVMSG {BOT} :!ping marker")
                    marker_sent = True
            with sqlite3.connect(db) as conn:
                (counted,) = conn.execute("SELECT sla_reminders FROM attempts").fetchone()
            coord.close()
            return {
                "seen": seen,
                "cpu": cpu,
                "back": back if back is not None else float("nan"),
                "answered": answered,
                "reminders": reminders,
                "counted": counted,
            }
        finally:
            bot.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jump", action="append", help="offsets such as +30h, +360h")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up the bot and ngircd
    print(f"clock jump, default settings ({cpu_note()})")
    for offset in args.jump or ["+30h", "+360h"]:
        r = jump_once(offset)
        print(
            f"{offset:>6}: jump seen after {r['seen']:.2f} s; answered after "
            f"{r['answered']:.2f} s having used {r['cpu']:.2f} s of CPU; "
            f"rejoined after {r['back']:.2f} s; "
            f"reminders received {r['reminders']}, "
            f"counted {r['counted']}"
        )


if __name__ == "__main__":
    main()

"""Core latency benchmark: ``!ping`` round trips, a burst, cold start and memory.

Run: ``python bench/latency.py [--rounds 500] [--burst 1000]``. Starts its own ngircd on
loopback (flood penalty off), a bare-socket echo bot (the floor) and the real bot as a
process with the bundled plugins enabled, then measures each from the same client:

* sequential round trips (private message, one in flight): p50/p90/p99, and the difference
  and ratio against the floor;
* a burst of commands sent back to back: replies per second;
* cold start: process start to the bot's JOIN seen in the channel (median of several
  restarts on an already migrated database, as after a deploy), beside its own floor measured
  in the same run: a fresh interpreter that only imports the libraries the design fixes
  (``irc.client``, ``sqlalchemy.orm``, ``click``) and exits;
* resident memory after joining, beside that same import-only interpreter's.

The bot's output queue and per-user limit are opened through their config keys for this run
(``flood_burst``/``flood_rate``, ``user_burst``/``user_rate``): the point is our code's cost,
not the throttle's. Targets (2-core machine): p50 within 0.3 ms of the floor, p99 < 2 ms,
>= 5,000 replies/s, cold start < 300 ms, < 40 MB resident.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import BotUnderTest, NgircdServer, RawClient, cpu_note, percentiles, rss_mb

DEPENDENCIES = "import irc.client, sqlalchemy.orm, click"
OPEN_LIMITS = {"flood_burst": 100000, "flood_rate": 100000.0}
OPEN_USER = {"user_burst": 100000, "user_rate": 100000.0}


def round_trips(client: RawClient, target: str, rounds: int, warmup: int = 50) -> list[float]:
    samples = []
    for i in range(warmup + rounds):
        t0 = time.perf_counter()
        client.send(f"PRIVMSG {target} :!ping")
        for line in client.lines(5):
            if b" PRIVMSG " in line and line.endswith(b":pong"):
                break
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return samples


def burst(client: RawClient, target: str, count: int) -> float:
    payload = "".join(f"PRIVMSG {target} :!ping\r\n" for _ in range(count)).encode()
    t0 = time.perf_counter()
    client.sock.sendall(payload)
    got = 0
    for line in client.lines(30):
        if line.endswith(b":pong"):
            got += 1
            if got == count:
                break
    return count / (time.perf_counter() - t0)


def dependency_floor(runs: int) -> tuple[float, float]:
    """Median ms and RSS (MB) of an interpreter that only imports the fixed dependencies."""
    script = (
        f"{DEPENDENCIES}\nfrom pathlib import Path\nprint(Path('/proc/self/status').read_text())"
    )
    times, rss = [], 0.0
    for _ in range(runs):
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        times.append((time.monotonic() - t0) * 1000)
        rss = next(
            int(x.split()[1]) / 1024 for x in out.stdout.splitlines() if x.startswith("VmRSS:")
        )
    return statistics.median(times), rss


def restart(bot: BotUnderTest, watcher: RawClient) -> float:
    """Stop the bot, start it again, and return ms from process start to its JOIN."""
    bot.proc.terminate()
    bot.proc.wait(10)
    watcher.wait_for(b"QUIT", timeout=10)
    started = bot.start()
    watcher.wait_for(b"JOIN", timeout=30)
    return (time.monotonic() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--plugins", default="livechat", help="comma-separated plugins to enable")
    parser.add_argument("--starts", type=int, default=7, help="restarts for the cold start")
    args = parser.parse_args()
    # As deployed: an install compiles bytecode once. Where the environment forbids writing
    # it, every start would compile our modules again and the cold start would measure that.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    with NgircdServer() as server:
        watcher = RawClient(server.host, server.port, "watcher")
        watcher.send("JOIN #livechat")
        watcher.wait_for(b" 366 ")

        floor = subprocess.Popen(
            [sys.executable, "bench/echo_floor.py", server.host, str(server.port), "floorbot"]
        )
        bot = BotUnderTest(
            {
                "irc": {
                    "host": server.host,
                    "port": server.port,
                    "nick": "benchbot",
                    **OPEN_LIMITS,
                },
                "bot": {
                    "identity": "hostmask",
                    "log_level": "WARNING",
                    "plugins": [p for p in args.plugins.split(",") if p],
                    **OPEN_USER,
                },
                "database": {"url": "sqlite:///bench.db"},
            }
        )
        try:
            # Cold start: the first run migrates the database (and writes bytecode); the
            # restarts after it are what a deploy sees.
            bot.start()
            watcher.wait_for(b":benchbot!", timeout=30)
            cold_ms = statistics.median(restart(bot, watcher) for _ in range(args.starts))
            rss = rss_mb(bot.proc.pid)
            floor_ms, floor_rss = dependency_floor(args.starts)

            client = RawClient(server.host, server.port, "measurer")
            floor_samples = round_trips(client, "floorbot", args.rounds)
            bot_samples = round_trips(client, "benchbot", args.rounds)
            floor_rate = burst(client, "floorbot", args.burst)
            bot_rate = burst(client, "benchbot", args.burst)
            rss_after = rss_mb(bot.proc.pid)
        finally:
            bot.stop()
            floor.terminate()

    f, b = percentiles(floor_samples), percentiles(bot_samples)
    print(f"# latency.py: {args.rounds} sequential !ping round trips in PM, {cpu_note()}")
    print("# output queue and per-user limit opened via flood_*/user_* config keys for this run")
    print(f"{'':10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    print(f"{'floor':10}{f['p50']:9.3f}{f['p90']:9.3f}{f['p99']:9.3f}")
    print(f"{'bot':10}{b['p50']:9.3f}{b['p90']:9.3f}{b['p99']:9.3f}")
    print(
        f"{'bot-floor':10}{b['p50'] - f['p50']:9.3f}{b['p90'] - f['p90']:9.3f}"
        f"{b['p99'] - f['p99']:9.3f}"
    )
    print(
        f"{'ratio':10}{b['p50'] / f['p50']:9.2f}{b['p90'] / f['p90']:9.2f}"
        f"{b['p99'] / f['p99']:9.2f}"
    )
    print(
        f"burst of {args.burst}: bot {bot_rate:,.0f} replies/s, floor {floor_rate:,.0f} replies/s"
    )
    print(
        f"cold start (process start to JOIN seen, median of {args.starts}): {cold_ms:.0f} ms;"
        f" floor ({DEPENDENCIES}, then exit): {floor_ms:.0f} ms; ours above it:"
        f" {cold_ms - floor_ms:.0f} ms"
    )
    print(
        f"resident memory: {rss:.1f} MB after joining, {rss_after:.1f} MB after the run;"
        f" floor (the same imports): {floor_rss:.1f} MB"
    )


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmarks: a server, a raw client, the bot as a process, statistics.

The benchmarks measure the bot as it runs in production (a separate process started with
``python -m ircbot``) against a real ngircd on loopback, beside a floor measured in the same
run, so ratios stay meaningful on a noisy machine.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.botproc import dump_toml  # noqa: E402
from tests.support.ngircd import NgircdServer  # noqa: E402

__all__ = ["BotUnderTest", "NgircdServer", "RawClient", "cpu_note", "percentiles", "rss_mb"]


class RawClient:
    """A minimal, fast IRC client: blocking socket, TCP_NODELAY, its own line buffer.

    Deliberately not the tests' ``tests.support.client.IRCTestClient``: that one parses every
    line and hands it over from a reader thread, and this client's own cost is part of the
    floor each benchmark measures against, so it must stay as small as it is.
    """

    def __init__(self, host: str, port: int, nick: str, *, quickack: bool = False) -> None:
        """Connect and register. ``quickack``: acknowledge every segment at once (see recv)."""
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.quickack = quickack and hasattr(socket, "TCP_QUICKACK")
        self.buf = b""
        self.nick = nick
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.wait_for(b" 001 ")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def lines(self, timeout: float = 10):
        """Yield lines as they come; PINGs are answered; stops at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n" in self.buf:
                line, self.buf = self.buf.split(b"\r\n", 1)
                if line.startswith(b"PING "):
                    self.sock.sendall(b"PONG " + line[5:] + b"\r\n")
                    continue
                yield line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                self.buf += self.recv()

    def wait_for(self, needle: bytes, timeout: float = 10) -> bytes:
        for line in self.lines(timeout):
            if needle in line:
                return line
        raise AssertionError("unreachable")

    def recv(self) -> bytes:
        """What the socket holds now (it is readable).

        With ``quickack``, Linux's delayed ACK is turned off again after each read (the
        kernel resets it): the server does not set TCP_NODELAY, so a reply of many lines
        would otherwise stall about 40 ms in Nagle's algorithm waiting for our ACK, a cost
        of the test client and not of the bot.
        """
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def drain(self) -> int:
        """Drop whatever has arrived, without waiting (PINGs answered); return lines dropped.

        A client that only sometimes reads (a trainee in a busy channel) would otherwise let
        the server's send queue for it grow until the server disconnects it.
        """
        while select.select([self.sock], [], [], 0)[0]:
            self.buf += self.recv()
        *lines, self.buf = self.buf.split(b"\r\n")
        dropped = 0
        for line in lines:
            if line.startswith(b"PING "):
                self.sock.sendall(b"PONG " + line[5:] + b"\r\n")
            else:
                dropped += 1
        return dropped

    def close(self) -> None:
        try:
            self.send("QUIT :done")
        finally:
            self.sock.close()


class BotUnderTest:
    """The bot as a process: ``python -m ircbot -c FILE run`` in a temporary folder."""

    def __init__(self, config: dict, env: dict[str, str] | None = None) -> None:
        """``env``: the process's whole environment (default: this one's)."""
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="bench-bot-"))
        (self.dir / "ircbot.toml").write_text(dump_toml(config))
        self.proc: subprocess.Popen | None = None
        self.log = open(self.dir / "bot.log", "wb")  # noqa: SIM115

    def start(self) -> float:
        """Start the process; return the monotonic time it was started at."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ircbot", "-c", "ircbot.toml", "run"],
            cwd=self.dir,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return started

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the bot's output, to show why a benchmark step got no answer."""
        text = (self.dir / "bot.log").read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def cleanup(self) -> None:
        """Stop the bot and remove its folder (config, log, a SQLite file placed there)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99 of samples in seconds, as milliseconds."""
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": qs[49] * 1000, "p90": qs[89] * 1000, "p99": qs[98] * 1000}


def cpu_note() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"

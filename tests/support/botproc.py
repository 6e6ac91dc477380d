"""Run the bot under test as a real subprocess, configured by a generated TOML file.

Why a subprocess: it is how the bot runs in production (`python -m ircbot -c FILE run`), so
tests cover start-up, config validation, signal handling, restarts that resume the outbox and
crashes (SIGKILL), none of which an in-process bot would exercise.

The config contract (key names exactly so): `[irc] host, port, tls, tls_verify, nick,
alt_nicks, username, realname, channels, sasl_username, sasl_password_env, sasl_password_file,
flood_burst, flood_rate`; `[bot] prefix, identity, plugins, log_level, user_burst, user_rate`;
`[database] url`; and one section per plugin, e.g. `[livechat]`.

The bot package is imported from the installed (editable) distribution. We deliberately do not
put the project root on PYTHONPATH: that would also expose `plugins/` as a top-level package
next to its installed name `ircbot_plugins`.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["BotProcess", "dump_toml"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------------------- TOML writer


def _toml_string(value: str) -> str:
    out = ['"']
    for char in value:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"TOML keys must be str, not {type(key).__name__}: {key!r}")
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item, where) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML at {where}")


def dump_toml(data: Mapping[str, Any]) -> str:
    """Write a nested dict as TOML (str, int, float, bool, lists of those, nested tables).

    `tomllib` only reads, and this small subset is all the bot's config needs. Keys whose value
    is None are left out, so a test can drop a key from a default config by setting it to None.
    """
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _dump_table(table: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
    for key, value in scalars:
        where = ".".join([*path, key])
        lines.append(f"{_toml_key(key)} = {_toml_value(value, where)}")
    for key, value in tables:
        _dump_table(value, [*path, key], lines)


# ------------------------------------------------------------------------------ process


class BotProcess:
    """The bot as a subprocess: `[sys.executable, "-m", "ircbot", "-c", CONFIG, "run"]`.

    The config is (re)written from `self.config` on every `start()`, so a test can change it
    and `restart()`. cwd is the temp folder, so a relative SQLite URL lands there. Output
    (stdout and stderr) is appended to `bot.log` across restarts.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        workdir: str | os.PathLike[str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Prepare (not start); `workdir` defaults to a new temp folder removed at exit."""
        self.config: dict[str, Any] = _deep_copy(config)
        self.env: dict[str, str] = dict(env or {})
        self.extra_args = extra_args
        self._own_workdir = workdir is None
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="bot-"))
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "ircbot.toml"
        self.log_path = self.workdir / "bot.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_pos = 0

    @property
    def command(self) -> list[str]:
        """The argv the bot is started with."""
        return [
            sys.executable,
            "-m",
            "ircbot",
            "-c",
            str(self.config_path),
            *self.extra_args,
            "run",
        ]

    @property
    def pid(self) -> int | None:
        """The process id while it runs (or until reaped)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the bot process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last run (None while running or before any start)."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> BotProcess:
        """Write the config and start the bot; `wait_for_log` then sees only this run's output."""
        if self.running:
            raise RuntimeError("the bot is already running")
        self.config_path.write_text(dump_toml(self.config), encoding="utf-8")
        self._close_log()
        self._log_pos = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("ab")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # log lines must reach the file as they happen
        env.update(self.env)
        self._proc = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def log_text(self) -> str:
        """The whole log (all runs), decoded leniently."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", "replace")

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"

    def wait_for_log(
        self, regex: str | re.Pattern[str], timeout: float = 10, *, poll: float = 0.02
    ) -> re.Match[str]:
        """Wait until the log shows `regex` after the previous match, and return the match.

        Like `IRCTestClient.expect`, each match moves a cursor past it, so waiting twice for the
        same pattern waits for two occurrences; `start()` moves the cursor to the new run's
        output. Polls the file every `poll` seconds, bounded by `timeout`, and fails early (with
        the log tail) if the bot exits first.
        """
        rx = re.compile(regex) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.running  # read before the file, so a last line is not missed
            data = self.log_path.read_bytes() if self.log_path.exists() else b""
            # surrogateescape round-trips every byte, so the cursor stays an exact byte offset.
            text = data[self._log_pos :].decode("utf-8", "surrogateescape")
            match = rx.search(text)
            if match is not None:
                self._log_pos += len(text[: match.end()].encode("utf-8", "surrogateescape"))
                return match
            if exited:
                raise AssertionError(
                    f"the bot is not running (exit status {self.returncode}) and did not log "
                    f"{rx.pattern!r}; log tail:\n{self._log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"the bot did not log {rx.pattern!r} within {timeout:.2f} s; "
                    f"log tail:\n{self._log_tail()}"
                )
            time.sleep(poll)  # polling interval of a bounded wait on a file

    def terminate(self, timeout: float = 10) -> int | None:
        """Send SIGTERM and wait (bounded) for a clean exit; return the exit status.

        A bot that ignores SIGTERM is killed and the test fails: graceful shutdown is part of
        the contract. Returns None if the bot was never started.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
                self._close_log()
                raise AssertionError(
                    f"the bot did not exit within {timeout:.2f} s of SIGTERM (killed); "
                    f"log tail:\n{self._log_tail()}"
                ) from None
        self._close_log()
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL, as a crash would; return the exit status (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        self._close_log()
        return proc.returncode

    def restart(self, *, graceful: bool = True) -> BotProcess:
        """Stop (SIGTERM, or SIGKILL with graceful=False) and start again with `self.config`."""
        if graceful:
            self.terminate()
        else:
            self.kill()
        return self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Kill the bot if it runs, and remove the temp folder if we created it."""
        self.kill()
        self._close_log()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped({self.returncode})"
        return f"<BotProcess pid={self.pid} {state} {self.workdir}>"


def _deep_copy(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _deep_copy(value) if isinstance(value, Mapping) else value
        for key, value in config.items()
    }

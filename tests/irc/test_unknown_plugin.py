"""A plugin name in ``[bot] plugins`` that is not installed is a configuration mistake like
any other: one line naming the file and the key, exit code 2, no traceback, and the bot
neither connects nor touches the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fakeserver import ScriptedServer

pytestmark = pytest.mark.timeout(60)


def ircbot(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IRCBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "ircbot", "-c", str(path), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=path.parent,
        timeout=30,
    )


@pytest.mark.parametrize("command", [["config", "check"], ["run"], ["db", "upgrade"]])
def test_an_unknown_plugin_is_one_line_naming_the_file_and_key_exit_2(tmp_path, command):
    with ScriptedServer() as server:
        path = tmp_path / "bot.toml"
        path.write_text(
            f'[irc]\nhost = "{server.host}"\nport = {server.port}\n'
            '[bot]\nplugins = ["livechat", "no_such_plugin"]\n'
            f'[database]\nurl = "sqlite:///{tmp_path / "bot.db"}"\n',
            encoding="utf-8",
        )
        result = ircbot(path, *command)
        connected = server.connected
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ")
    assert str(path) in line
    assert "[bot] plugins" in line
    assert "'no_such_plugin'" in line
    assert "livechat" in line  # what is installed, so the fix is obvious
    assert result.stdout == ""
    assert not connected, "the bot connected with a configuration it should have refused"
    assert not (tmp_path / "bot.db").exists()

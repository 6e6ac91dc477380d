"""Config masks that would hand a role to anyone: refused before the bot starts.

Three attacks on ``[livechat] coordinators``/``helpers``, each tried through the real
``ircbot`` command (click's CliRunner for ``config check``, a subprocess for ``run``):

- In account mode a ``nick!user@host`` entry would make anyone logged in under any account
  who takes that nick a coordinator. It is a configuration error: one line naming the file
  and the key, exit code 2.
- In either mode a mask whose host part is only wildcards and separators (``*!*@*``,
  ``*@*``, ``*!*@*.*``, ``*!*@**``, ``?*!*@*``, ``Alice!*@*``) matches whoever picks the
  nick and user name, which is everyone: refused the same way.
- A mask whose ident is not fixed (``~`` or a wildcard) on a shared host (a wildcard in the
  host, or a web/shell gateway cloak) is allowed but warned about, in ``config check`` and
  in the log of ``run``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ircbot.cli import main
from tests.support.botproc import BotProcess, dump_toml

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, identity: str, **livechat: list[str]) -> Path:
    path = folder / "ircbot.toml"
    config = {
        "irc": {"host": "127.0.0.1", "port": 9, "nick": "maskbot", "channels": ["#masks"]},
        "bot": {"identity": identity, "plugins": ["livechat"]},
        "database": {"url": f"sqlite:///{folder / 'bot.db'}"},
        "livechat": livechat,
    }
    path.write_text(dump_toml(config), encoding="utf-8")
    return path


def check(path: Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["-c", str(path), "config", "check"], env=env)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("key", ["coordinators", "helpers"])
@pytest.mark.parametrize("entry", ["Alice!*@*", "alice!~alice@alice.example", "bob@host.example"])
def test_a_mask_in_account_mode_is_a_configuration_error(
    tmp_path: Path, key: str, entry: str
) -> None:
    path = write_config(tmp_path, "account", **{key: ["carol", entry]})
    line = one_line_error(check(path))
    assert line.startswith(f"error: {path}: [livechat] {key}: ")
    assert repr(entry) in line and "account mode" in line


def test_the_error_names_the_environment_variable_it_came_from(tmp_path: Path) -> None:
    path = write_config(tmp_path, "account")
    env = {"IRCBOT_LIVECHAT__COORDINATORS": "carol,Alice!*@*"}
    line = one_line_error(check(path, env))
    assert "environment IRCBOT_LIVECHAT__COORDINATORS" in line and "'Alice!*@*'" in line


EVERYONE = [
    "*!*@*",
    "*@*",
    "*!*@*.*",
    "*!*@**",
    "?*!*@*",
    "*!*@*.*.*",
    "*!*@*:*",
    "Alice!*@*",
    "*!~carol@*",
    "*!carol@??*",
]


@pytest.mark.parametrize("mask", EVERYONE)
def test_a_mask_that_matches_everyone_is_refused_in_hostmask_mode(
    tmp_path: Path, mask: str
) -> None:
    path = write_config(tmp_path, "hostmask", helpers=["*!~bob@bob.example", mask])
    line = one_line_error(check(path))
    assert line.startswith(f"error: {path}: [livechat] helpers: ")
    assert repr(mask) in line and "any host" in line


@pytest.mark.parametrize("mask", ["alice!bob", "alice", "a!b!c@host", "a@b@host", "a!b@ho st"])
def test_a_malformed_mask_is_refused(tmp_path: Path, mask: str) -> None:
    path = write_config(tmp_path, "hostmask", coordinators=[mask])
    if "!" not in mask and "@" not in mask:
        # a bare word is an account name, not a mask: nothing to refuse
        assert check(path).exit_code == 0
        return
    line = one_line_error(check(path))
    assert f"[livechat] coordinators: {mask!r}" in line and "nick!user@host" in line


def test_sound_masks_pass_and_an_unfixed_ident_on_a_shared_host_is_warned(tmp_path: Path) -> None:
    masks = [
        "carol!~carol@carol.example",  # one host: the host is what identifies
        "*!erin@*.staff.example",  # a shared host, but an ident the ident server vouches for
        "*!~frank@*.users.example",  # warned: anyone on that network can say ~frank
        "*!*@gateway/web/irccloud.com/*",  # warned: any ident behind a shared gateway
        "dave!~dave@203.0.113.7",
    ]
    path = write_config(tmp_path, "hostmask", coordinators=masks[:2], helpers=masks[2:])
    result = check(path)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2, result.stderr
    assert "[livechat] helpers: '*!~frank@*.users.example'" in warnings[0]
    assert "[livechat] helpers: '*!*@gateway/web/irccloud.com/*'" in warnings[1]
    assert all("ident" in w and "shared host" in w for w in warnings)
    assert 'helpers = ["*!~frank@*.users.example"' in result.stdout  # still in effect


def test_run_refuses_a_mask_that_matches_everyone_before_connecting(tmp_path: Path) -> None:
    path = write_config(tmp_path, "hostmask", coordinators=["*!*@*"])
    done = subprocess.run(
        [sys.executable, "-m", "ircbot", "-c", str(path), "run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {path}: [livechat] coordinators: '*!*@*' matches any host: "
        "name the host (or a host pattern with a fixed part), since anyone can pick a nick "
        "and a user name"
    ]


def test_run_logs_the_warning_and_serves(ngircd, irc_client) -> None:
    watcher = irc_client("mk_watch", channels=("#masks",))
    config = {
        "irc": {
            "host": ngircd.host,
            "port": ngircd.port,
            "nick": "maskbot",
            "channels": ["#masks"],
            "reconnect_min": 0.2,
            "reconnect_max": 1.0,
        },
        "bot": {"identity": "hostmask", "plugins": ["livechat"], "log_level": "INFO"},
        "database": {"url": "sqlite:///bot.db"},
        "livechat": {"helpers": ["*!~frank@*.users.example"]},
    }
    with BotProcess(config) as bot:
        bot.wait_for_log(r"WARNING .*\[livechat\] helpers: '\*!~frank@\*\.users\.example'.*ident")
        watcher.expect(command="JOIN", source="maskbot", timeout=15)
        watcher.say("#masks", "!ping marker")
        watcher.expect(r"marker", source="maskbot", target="#masks")
        assert bot.terminate() == 0


def test_config_check_output_is_still_valid_toml_for_the_masks(tmp_path: Path) -> None:
    """The accepted masks come out as they went in (the check changes nothing)."""
    path = write_config(tmp_path, "hostmask", coordinators=["carol!~carol@carol.example"])
    result = check(path)
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.stdout)["livechat"]["coordinators"] == [
        "carol!~carol@carol.example"
    ]
    assert "warning" not in result.stderr

"""``contrib/ircbot.service`` is a unit systemd accepts, and what it sets up works for the bot.

``systemd-analyze verify`` reads the unit as systemd would (with ``ExecStart`` pointed at this
install's ``ircbot``, since ``verify`` checks the binary exists) and must have nothing to
say: it exits 0 even on an unknown key or a value it cannot parse, so its output is the
verdict. Without the tool the test is skipped. The environment the unit gives the bot, with
systemd's ``%d`` (the credentials directory) filled in the way systemd fills it, must make
``ircbot config check`` read the SASL password from the credential the unit loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "ircbot.service"
IRCBOT = Path(sys.executable).parent / "ircbot"


def directives(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given, in order (units repeat keys; ConfigParser can't)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return directives(UNIT.read_text(encoding="utf-8"))


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    pairs = (value.partition("=") for value in unit.get("Service.Environment", []))
    return {key: value for key, _, value in pairs}


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/ircbot/bin/ircbot run" in text
    installed = tmp_path / "ircbot.service"
    installed.write_text(text.replace("/opt/ircbot/bin/ircbot", str(IRCBOT)), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(installed)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", "systemd-analyze has remarks on the unit"


def test_the_unit_runs_the_bot_unprivileged_sandboxed_and_restarted(unit):
    service = {key.partition(".")[2]: values[-1] for key, values in unit.items()}
    assert service["ExecStart"].split()[1:] == ["run"]
    unprivileged = service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root")
    assert unprivileged, "the bot must not run as root"
    assert service["ProtectSystem"] == "strict"
    assert service["Restart"] == "on-failure"
    assert "2" in service["RestartPreventExitStatus"].split()  # a config error: no loop
    # The SQLite file lands in the state directory: the default URL is relative to it.
    assert service["WorkingDirectory"] == f"/var/lib/{service['StateDirectory']}"


def test_the_unit_gives_the_bot_its_config_and_the_sasl_credential(unit, tmp_path):
    env = environment(unit)
    assert env["IRCBOT_CONFIG"] == "/etc/ircbot/ircbot.toml"
    (credential,) = unit["Service.LoadCredential"]
    name, _, source = credential.partition(":")
    assert source.startswith("/etc/ircbot/")
    assert env["IRCBOT_IRC__SASL_PASSWORD_FILE"] == f"%d/{name}"

    # What systemd does at start: copy the credential into $CREDENTIALS_DIRECTORY, put its
    # path where the unit says %d; then the bot must find the password there.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / name).write_text("s3cret-from-systemd\n", encoding="utf-8")
    config = tmp_path / "ircbot.toml"
    config.write_text('[irc]\nsasl_username = "livechat-bot"\n', encoding="utf-8")
    run_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IRCBOT_")},
        **{k: v.replace("%d", str(credentials)) for k, v in env.items()},
        "CREDENTIALS_DIRECTORY": str(credentials),
        "IRCBOT_CONFIG": str(config),  # /etc/ircbot is the installed machine's
    }
    result = subprocess.run(
        [str(IRCBOT), "config", "check"],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"# {config}: OK" in result.stderr
    assert "s3cret-from-systemd" not in result.stdout + result.stderr

    (credentials / name).unlink()  # and without the credential, one line naming the key
    missing = subprocess.run(
        [str(IRCBOT), "config", "check"],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "sasl_password_file" in missing.stderr and "Traceback" not in missing.stderr


def test_ircbot_version_and_config_from_the_environment(tmp_path):
    from importlib.metadata import version

    shown = subprocess.run([str(IRCBOT), "--version"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"ircbot, version {version('livechat-bot')}"

    config = tmp_path / "elsewhere.toml"
    config.write_text('[bot]\nprefix = "?"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRCBOT_")}
    by_env = subprocess.run(
        [str(IRCBOT), "config", "check"],
        cwd=tmp_path,
        env={**env, "IRCBOT_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert by_env.returncode == 0, by_env.stderr
    assert 'prefix = "?"' in by_env.stdout
    # -c still wins over the environment
    other = tmp_path / "other.toml"
    other.write_text('[bot]\nprefix = "+"\n', encoding="utf-8")
    by_option = subprocess.run(
        [str(IRCBOT), "-c", str(other), "config", "check"],
        cwd=tmp_path,
        env={**env, "IRCBOT_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert by_option.returncode == 0, by_option.stderr
    assert 'prefix = "+"' in by_option.stdout

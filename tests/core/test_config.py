"""Configuration: every mistake is one line naming the file (or variable) and the key, exit 2,
no traceback; environment overrides; ``init`` writes what ``config check`` accepts; secrets
never printed. Checked through :func:`load_config` and through the real CLI in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ircbot.config import ConfigError, load_config, mask_secret

SECRET = "s3cr3t-Hunter2-do-not-print"


def write(tmp_path: Path, text: str, name: str = "bot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def ircbot(
    path: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ircbot -c PATH args...`` with only our IRCBOT_ variables in the environment,
    run in PATH's folder unless told otherwise."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IRCBOT_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ircbot", "-c", str(path), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd or path.parent,
        timeout=30,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """Exit 2, no traceback, exactly one line on stderr, naming each of ``names``."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0]
    return lines[0]


def load_error(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# (file text, what the one line must name besides the file)
MISTAKES = {
    "unknown key": ("[irc]\nprot = 6667\n", ["prot"]),
    "unknown section": ("[ircc]\nport = 6667\n", ["ircc"]),
    "wrong type": ('[irc]\nport = "6667"\n', ["port", "integer"]),
    "bad choice": ('[bot]\nidentity = "nick"\n', ["identity", "account, hostmask"]),
    "below minimum": ("[bot]\nuser_burst = 0\n", ["user_burst", "at least 1"]),
    "bool as int": ("[irc]\ntls = 1\n", ["tls", "true or false"]),
    "list of ints": ("[irc]\nchannels = [1, 2]\n", ["channels", "list of strings"]),
    "not TOML": ("[irc\n", ["not valid TOML"]),
    "not a database URL": ('[database]\nurl = "bot.db"\n', ["[database] url"]),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_load_config_names_the_file_and_the_key(tmp_path, mistake):
    text, names = MISTAKES[mistake]
    path = write(tmp_path, text)
    message = load_error(path)
    assert str(path) in message
    for name in names:
        assert name in message


@pytest.mark.parametrize("mistake", ["unknown key", "unknown section", "wrong type"])
def test_cli_reports_a_config_mistake_in_one_line_with_exit_2(tmp_path, mistake):
    text, names = MISTAKES[mistake]
    path = write(tmp_path, text)
    assert_one_line_error(ircbot(path, "config", "check"), str(path), *names)


@pytest.mark.parametrize("mistake", ["bad choice", "below minimum", "not a database URL"])
def test_cli_run_refuses_a_bad_config_before_connecting(tmp_path, mistake):
    text, names = MISTAKES[mistake]
    path = write(tmp_path, text)
    assert_one_line_error(ircbot(path, "run"), str(path), *names)


def test_cli_missing_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    line = assert_one_line_error(ircbot(path, "config", "check"), str(path))
    assert "no such file" in line
    assert "ircbot init" in line


def test_missing_file_from_load_config(tmp_path):
    path = tmp_path / "nowhere.toml"
    assert str(path) in load_error(path)


# ------------------------------------------------------------------- environment


def test_environment_overrides_int_bool_and_list(tmp_path):
    path = write(tmp_path, '[irc]\nport = 6667\nchannels = ["#file"]\n')
    config = load_config(
        path,
        environ={
            "IRCBOT_IRC__PORT": "7000",
            "IRCBOT_IRC__TLS": "yes",
            "IRCBOT_IRC__CHANNELS": "#a, #b",
            "IRCBOT_BOT__USER_RATE": "2",
            "IRCBOT_UNRELATED": "ignored",
        },
    )
    assert config.irc.port == 7000
    assert config.irc.tls is True
    assert config.irc.channels == ["#a", "#b"]
    assert config.bot.user_rate == 2.0


def test_environment_list_in_toml_form_and_false(tmp_path):
    path = write(tmp_path, "[irc]\ntls = true\n")
    config = load_config(
        path,
        environ={"IRCBOT_IRC__ALT_NICKS": '["bot_", "bot[2]"]', "IRCBOT_IRC__TLS": "off"},
    )
    assert config.irc.alt_nicks == ["bot_", "bot[2]"]
    assert config.irc.tls is False


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("IRCBOT_IRC__PORT", "seventy", ["integer"]),
        ("IRCBOT_IRC__TLS", "perhaps", ["true or false"]),
        ("IRCBOT_IRC__PROT", "7000", ["prot"]),
        ("IRCBOT_IRC__CHANNELS", "[#a", ["TOML list"]),
        ("IRCBOT_IRC__CHANNELS", "[1, 2]", ["list of strings"]),
        ("IRCBOT_BOT__USER_BURST", "0", ["at least 1"]),
        ("IRCBOT_BOT__IDENTITY", "nick", ["account, hostmask"]),
    ],
)
def test_a_bad_override_names_the_variable(tmp_path, var, value, words):
    path = write(tmp_path, "[irc]\n")
    message = load_error(path, {var: value})
    assert var in message
    for word in words:
        assert word in message


def test_cli_uses_the_environment_override(tmp_path):
    path = write(tmp_path, "[irc]\nport = 6667\n[bot]\nplugins = []\n")
    result = ircbot(path, "config", "check", env={"IRCBOT_IRC__PORT": "7000"})
    assert result.returncode == 0, result.stderr
    assert "port = 7000\n" in result.stdout


def test_cli_bad_override_is_one_line_naming_the_variable(tmp_path):
    path = write(tmp_path, "[bot]\nplugins = []\n")
    result = ircbot(path, "config", "check", env={"IRCBOT_IRC__PORT": "x"})
    assert_one_line_error(result, "IRCBOT_IRC__PORT")


# ---------------------------------------------------------------- init and check


def test_init_writes_a_file_config_check_accepts(tmp_path):
    path = tmp_path / "fresh.toml"
    result = ircbot(path, "init")
    assert result.returncode == 0, result.stderr
    assert path.exists()
    check = ircbot(path, "config", "check")
    assert check.returncode == 0, check.stderr
    assert "Traceback" not in check.stderr
    assert "[irc]" in check.stdout
    assert "OK" in check.stderr


def test_init_does_not_overwrite_an_existing_file(tmp_path):
    path = write(tmp_path, "[irc]\nport = 7\n")
    result = ircbot(path, "init")
    assert result.returncode != 0
    assert "exists" in result.stderr
    assert path.read_text() == "[irc]\nport = 7\n"


def test_init_into_a_missing_folder_is_one_line_not_a_traceback(tmp_path):
    path = tmp_path / "no" / "such" / "folder" / "bot.toml"
    result = ircbot(path, "init", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert not path.exists()


def test_config_check_masks_the_database_password(tmp_path):
    path = write(
        tmp_path,
        f'[bot]\nplugins = []\n[database]\nurl = "postgresql://u:{SECRET}@db.example/bot"\n',
    )
    result = ircbot(path, "config", "check")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "postgresql://u:****@db.example/bot" in result.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://u:{SECRET}@h/db", "postgresql://u:****@h/db"),
        (f"postgresql+psycopg://u:{SECRET}@h:5432/db", "postgresql+psycopg://u:****@h:5432/db"),
        (f"postgresql://u@h/db?password={SECRET}", "postgresql://u@h/db?password=****"),
        (
            f"postgresql://u@h/db?sslmode=require&password={SECRET}&x=1",
            "postgresql://u@h/db?sslmode=require&password=****&x=1",
        ),
        ("sqlite:///ircbot.db", "sqlite:///ircbot.db"),
    ],
)
def test_database_url_masking_forms(url, shown):
    assert mask_secret(url) == shown


def test_config_check_never_prints_the_sasl_password_from_env(tmp_path):
    path = write(
        tmp_path,
        '[irc]\nsasl_username = "lcbot"\nsasl_password_env = "LCBOT_TEST_PW"\n'
        "[bot]\nplugins = []\n",
    )
    result = ircbot(path, "config", "check", env={"LCBOT_TEST_PW": SECRET})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert 'sasl_password_env = "LCBOT_TEST_PW"' in result.stdout


def test_config_check_never_prints_the_sasl_password_from_file(tmp_path):
    secret_file = tmp_path / "sasl.pw"
    secret_file.write_text(f"{SECRET}\nsecond line is ignored\n")
    path = write(
        tmp_path,
        f'[irc]\nsasl_username = "lcbot"\nsasl_password_file = "{secret_file}"\n'
        "[bot]\nplugins = []\n",
    )
    result = ircbot(path, "config", "check")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert load_config(path, environ={}).sasl_password() == SECRET


def test_missing_password_variable_is_a_one_line_error(tmp_path):
    path = write(
        tmp_path,
        '[irc]\nsasl_username = "lcbot"\nsasl_password_env = "LCBOT_UNSET_PW"\n'
        "[bot]\nplugins = []\n",
    )
    line = assert_one_line_error(
        ircbot(path, "config", "check"), str(path), "sasl_password_env", "LCBOT_UNSET_PW"
    )
    assert "not set" in line


def test_unreadable_password_file_is_a_config_error(tmp_path):
    path = write(
        tmp_path,
        f'[irc]\nsasl_username = "lcbot"\nsasl_password_file = "{tmp_path}/none"\n',
    )
    config = load_config(path, environ={})
    with pytest.raises(ConfigError, match="sasl_password_file"):
        config.sasl_password()

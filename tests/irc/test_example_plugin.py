"""The README's example plugin, ``examples/karma/``, is a real package that works.

It is installed (``pip install --no-deps --no-build-isolation``, offline) into a fresh
virtual environment beside the bot: the test run's own packages are made visible to that
environment by a ``.pth`` file (the site-packages folder, and the hooks of an editable
install of the bot if the test runs from one). There ``ircbot db upgrade`` finds the plugin
by its entry point and applies its migration branch, and the bot, run as a process with
that environment's Python, answers the plugin's commands on ngircd.
"""

from __future__ import annotations

import ast
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.botproc import BotProcess, dump_toml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "karma"

pytestmark = pytest.mark.timeout(240)


def test_the_readme_shows_the_example_as_it_is_and_it_imports_only_ircbot() -> None:
    source = (EXAMPLE / "karma_plugin" / "__init__.py").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Writing a plugin\n", 1)[1].split("\n## ", 1)[0]
    shown = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown == source, "README: paste examples/karma/karma_plugin/__init__.py as it is"
    from_core = [
        node.module or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ircbot")
    ]
    assert from_core == ["ircbot"], from_core


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180)


def make_venv(where: Path) -> Path:
    """A venv that sees the test run's packages (and so the bot); its python."""
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    purelib = run(
        str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=where
    ).stdout.strip()
    ours = sorted({sysconfig.get_paths()[key] for key in ("purelib", "platlib")})
    lines = list(ours)
    for folder in ours:  # an editable install of the bot is an import hook in a .pth
        for pth in sorted(Path(folder).glob("__editable__*.pth")):
            lines += [line for line in pth.read_text().splitlines() if line.startswith("import")]
    (Path(purelib) / "test-run.pth").write_text("\n".join(lines) + "\n")
    return python


class VenvBot(BotProcess):
    """The bot as a process, run by the venv's Python (where the plugin is installed)."""

    def __init__(self, python: Path, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.python = python

    @property
    def command(self) -> list[str]:
        return [str(self.python), "-m", "ircbot", "-c", str(self.config_path), "run"]


def test_the_karma_plugin_installs_migrates_and_answers_on_ngircd(tmp_path, ngircd, irc_client):
    python = make_venv(tmp_path / "venv")
    installed = run(
        str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
        str(EXAMPLE), cwd=tmp_path,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    found = run(
        str(python), "-c",
        "import karma_plugin, ircbot; from importlib.metadata import entry_points;"
        "print(karma_plugin.__file__);"
        "print([ep.value for ep in entry_points(group='ircbot.plugins', name='karma')])",
        cwd=tmp_path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    where, entry = found.stdout.splitlines()
    assert where.startswith(str(tmp_path / "venv")), "karma_plugin is not the installed copy"
    assert entry == "['karma_plugin:plugin']"

    work = tmp_path / "work"
    config = {
        "irc": {
            "host": ngircd.host,
            "port": ngircd.port,
            "nick": "karmabot",
            "channels": ["#karma"],
            "flood_burst": 100,
            "flood_rate": 100.0,
        },
        "bot": {"identity": "hostmask", "plugins": ["karma"], "log_level": "INFO"},
        "database": {"url": "sqlite:///bot.db"},
        "karma": {"limit": 2},
    }
    bot = VenvBot(python, config, workdir=work)
    try:
        bot.config_path.write_text(dump_toml(bot.config), encoding="utf-8")
        upgrade = run(
            str(python), "-m", "ircbot", "-c", str(bot.config_path), "db", "upgrade", cwd=work
        )
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        engine = sa.create_engine(f"sqlite:///{work / 'bot.db'}")
        try:
            assert "karma_thanks" in sa.inspect(engine).get_table_names()
            with engine.connect() as conn:
                heads = set(
                    conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
                )
            assert "karma_0001" in heads, heads
        finally:
            engine.dispose()

        ann = irc_client("kann", channels=("#karma",))
        ben = irc_client("kben", channels=("#karma",))
        bot.start()
        ann.expect(command="JOIN", source="karmabot", timeout=15)
        ann.say("#karma", "!thank kben for the review")
        ann.expect(r"^kann: told kben; that's 1 thanks for them\.$", source="karmabot", timeout=10)
        ben.expect(r"^kann thanks you: for the review$", source="karmabot")
        ann.say("#karma", "!thank kann")
        ann.expect(r"^kann: thanking yourself doesn't count\.$", source="karmabot")
        ann.say("#karma", "!thank kben")
        ann.expect(r"^kann: told kben; that's 2 thanks for them\.$", source="karmabot")
        ann.say("#karma", "!thank kben again")  # [karma] limit = 2 a day
        ann.expect(r"^kann: that's 2 thanks today already", source="karmabot")
        ben.say("#karma", "!karma")
        ben.expect(r"^kben: you have had 2 thanks\.$", source="karmabot")
        ben.say("#karma", "!help thank")
        ben.expect(r"^kben: !thank <who> \[why\.\.\.\]: Thank someone\.$", source="karmabot")
        assert bot.terminate() == 0
        assert "Traceback" not in bot.log_text()
    finally:
        bot.close()

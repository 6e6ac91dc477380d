"""A non-editable install carries the bundled plugin and the migrations, not only a checkout.

Builds the wheel, installs it into a fresh virtual environment (its dependencies are the
ones the test runs with, made visible by a ``.pth`` line, so no network is needed), and runs
the console script from a folder outside the checkout: ``init``, ``config check`` and
``db upgrade`` must all work there.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=180)


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps",
        "-w", str(wheels), str(ROOT), cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("livechat_bot-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site_packages = run(
        str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    ).stdout.strip()
    # A path line in a .pth adds the directory but not the .pth files in it, so the
    # checkout's editable install stays invisible and ircbot must come from the wheel.
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(site_packages) / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    installed = run(str(python), "-m", "pip", "install", "--no-deps", str(wheel), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "work"
    work.mkdir()
    where = run(
        str(python), "-c",
        "import ircbot, ircbot_plugins.livechat, ircbot.storage as s;"
        "print(ircbot.__file__); print(ircbot_plugins.livechat.__file__);"
        "print(s.migrations_path())",
        cwd=work,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    for line in where.stdout.splitlines():
        assert line.startswith(str(env_dir)), f"{line} is not from the installed wheel"

    ircbot = str(env_dir / "bin" / "ircbot")
    assert run(ircbot, "init", cwd=work).returncode == 0
    check = run(ircbot, "-c", "ircbot.toml", "config", "check", cwd=work)
    assert check.returncode == 0, check.stderr
    assert "[livechat]" in check.stdout
    upgrade = run(ircbot, "db", "upgrade", cwd=work)
    assert upgrade.returncode == 0, upgrade.stderr
    tables = set(sa.inspect(sa.create_engine(f"sqlite:///{work / 'ircbot.db'}")).get_table_names())
    assert {"outbox", "alembic_version"} <= tables
    assert len(tables) > 2, "the bundled plugin's tables are missing"
    # The HTML report's templates and stylesheet are package data of the plugin.
    site = run(ircbot, "-c", "ircbot.toml", "report", "--html", "site", cwd=work)
    assert site.returncode == 0, site.stderr
    assert "<svg" in (work / "site" / "index.html").read_text(encoding="utf-8")
    assert (work / "site" / "style.css").stat().st_size > 0

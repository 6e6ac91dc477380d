"""The bot as it runs in production, ``python -m ircbot -c FILE run``: it leaves IRC cleanly
on SIGTERM and SIGINT, its outbox survives SIGKILL, a refused SASL login stops it with one
line, and ``ircbot db upgrade`` builds the schema. A database it cannot open is one line
naming it, for ``run`` and ``db upgrade`` alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, inspect

from ircbot import outbox, storage
from ircbot.clock import utcnow
from tests.support.botproc import BotProcess, dump_toml
from tests.support.botthread import bot_config
from tests.support.client import nothing_before_pong


def process_config(ngircd, nick: str, channel: str, db_url: str = "sqlite:///bot.db") -> dict:
    return {
        "irc": {
            "host": ngircd.host,
            "port": ngircd.port,
            "nick": nick,
            "channels": [channel],
            "flood_burst": 100,
            "flood_rate": 100.0,
            "reconnect_min": 0.2,
            "reconnect_max": 1.0,
        },
        "bot": {"identity": "hostmask", "plugins": [], "log_level": "INFO"},
        "database": {"url": db_url},
    }


def wait_exit(bot: BotProcess, timeout: float = 10) -> int:
    """Bounded wait for the process to exit by itself; its exit status."""
    deadline = time.monotonic() + timeout
    while bot.returncode is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the bot did not exit within {timeout} s:\n{bot.log_text()}")
        time.sleep(0.01)
    return bot.returncode


def test_sigterm_says_quit_and_exits_0(ngircd, irc_client):
    watcher = irc_client("pr_term", channels=("#proc1",))
    with BotProcess(process_config(ngircd, "termbot", "#proc1")) as bot:
        watcher.expect(command="JOIN", source="termbot", timeout=15)
        os.kill(bot.pid, signal.SIGTERM)
        # A dropped socket would show as "Client closed connection": this is our own QUIT.
        watcher.expect(r"Shutting down", command="QUIT", source="termbot")
        assert wait_exit(bot) == 0
        # The last connection to close checkpoints the WAL and removes it: the DB was closed.
        assert (bot.workdir / "bot.db").exists()
        assert not (bot.workdir / "bot.db-wal").exists()
        assert "Traceback" not in bot.log_text()


def test_sigint_says_quit_and_exits_0(ngircd, irc_client):
    watcher = irc_client("pr_int", channels=("#proc2",))
    with BotProcess(process_config(ngircd, "intbot", "#proc2")) as bot:
        watcher.expect(command="JOIN", source="intbot", timeout=15)
        os.kill(bot.pid, signal.SIGINT)
        # A dropped socket would show as "Client closed connection": this is our own QUIT.
        watcher.expect(r"Shutting down", command="QUIT", source="intbot")
        assert wait_exit(bot) == 0
        # The last connection to close checkpoints the WAL and removes it: the DB was closed.
        assert (bot.workdir / "bot.db").exists()
        assert not (bot.workdir / "bot.db-wal").exists()
        assert "Traceback" not in bot.log_text()
        assert "KeyboardInterrupt" not in bot.log_text()


def test_outbox_survives_sigkill_and_is_delivered_once(ngircd, irc_client, tmp_path):
    db_url = f"sqlite:///{tmp_path}/bot.db"
    engine = storage.make_engine(db_url)
    storage.migrate(engine)
    with storage.transaction(storage.make_session_factory(engine)) as session:
        row = outbox.enqueue(session, "~pr_late@127.0.0.1", "kept across a crash", now=utcnow())
        session.flush()
        message_id = row.id

    def delivered_at():
        with storage.transaction(storage.make_session_factory(engine)) as session:
            return session.get(outbox.OutboxMessage, message_id).delivered_at

    watcher = irc_client("pr_kwatch", channels=("#proc3",))
    with BotProcess(process_config(ngircd, "killbot", "#proc3", db_url)) as bot:
        watcher.expect(command="JOIN", source="killbot", timeout=15)
        bot.kill()
        watcher.expect(command="QUIT", source="killbot")
        assert delivered_at() is None

        bot.start()
        watcher.expect(command="JOIN", source="killbot", timeout=15)
        late = irc_client("pr_late", channels=("#proc3",))
        late.expect(r"^kept across a crash$", source="killbot", target="pr_late")
        deadline = time.monotonic() + 5
        while delivered_at() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the row is marked just after the line is on the socket
        assert delivered_at() is not None
        nothing_before_pong(late, "killbot", r"crash")
    engine.dispose()


def test_a_refused_sasl_login_stops_the_run_with_one_error_line(scripted_server):
    irc = {"sasl_username": "prsasl", "sasl_password_env": "PR_SASL_PW", "caps": ["sasl"]}
    config = bot_config(scripted_server.host, scripted_server.port, "sqlite:///bot.db", irc=irc)
    config["bot"]["log_level"] = "INFO"
    with BotProcess(config, env={"PR_SASL_PW": "not-the-password"}) as bot:
        scripted_server.wait_for_client(timeout=15)
        for line in (r"^CAP LS 302$", r"^NICK ", r"^USER "):
            scripted_server.expect_line(line)
        scripted_server.send(":irc.test CAP * LS :sasl=PLAIN")
        scripted_server.expect_line(r"^CAP REQ :sasl$")
        scripted_server.send(":irc.test CAP * ACK :sasl")
        scripted_server.expect_line(r"^AUTHENTICATE PLAIN$")
        scripted_server.send("AUTHENTICATE :+")
        scripted_server.expect_line(r"^AUTHENTICATE ")
        scripted_server.send(":irc.test 904 lcbot :SASL authentication failed")
        scripted_server.expect_line(r"^QUIT", skip=True)
        scripted_server.close_client()
        assert wait_exit(bot) == 1
        log = bot.log_text().splitlines()
    assert "Traceback" not in "\n".join(log)
    errors = [line for line in log if " ERROR " in line]
    assert len(errors) == 1, errors
    assert "prsasl" in errors[0] and "SASL authentication failed" in errors[0], errors
    assert [line for line in log if "SASL" in line] == errors


def test_db_upgrade_creates_the_tables(tmp_path):
    db = tmp_path / "fresh.db"
    path = tmp_path / "bot.toml"
    path.write_text(dump_toml({"bot": {"plugins": []}, "database": {"url": f"sqlite:///{db}"}}))
    result = subprocess.run(
        [sys.executable, "-m", "ircbot", "-c", str(path), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    engine = create_engine(f"sqlite:///{db}")
    try:
        tables = set(inspect(engine).get_table_names())
        columns = {c["name"] for c in inspect(engine).get_columns("outbox")}
    finally:
        engine.dispose()
    assert {"outbox", "alembic_version"} <= tables
    assert {"recipient", "text", "delivered_at", "cancelled_at"} <= columns


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://postgres:pr-s3cret@127.0.0.1:1/nope",
            "postgresql+psycopg://postgres:***@127.0.0.1:1/nope",
        ),
        ("sqlite:///{tmp}/no/such/folder/bot.db", "sqlite:///{tmp}/no/such/folder/bot.db"),
    ],
    ids=["postgres-refused", "sqlite-no-folder"],
)
@pytest.mark.parametrize("command", [["run"], ["db", "upgrade"]], ids=" ".join)
def test_a_database_it_cannot_open_is_one_line_and_exit_code_1(tmp_path, url, shown, command):
    url, shown = url.format(tmp=tmp_path), shown.format(tmp=tmp_path)
    path = tmp_path / "bot.toml"
    # No IRC server on port 1 either: were the database opened, the bot would not hang on IRC.
    path.write_text(dump_toml({"irc": {"port": 1}, "database": {"url": url}}))
    result = subprocess.run(
        [sys.executable, "-m", "ircbot", "-c", str(path), *command],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot open the database {shown}: "), lines
    assert "pr-s3cret" not in result.stderr

"""The HTML report (``ircbot report --html``) on real SQLite and PostgreSQL databases.

The team is played through the workflow, as on IRC, with names and notes a hostile user
could type: the written pages must show them as text, never as markup; host masks and
addresses must not appear at all; ``public`` must leave notes and reasons out. The numbers
(funnel, waits, load) are checked against a story small enough to count by hand.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from ircbot_plugins.livechat import charts, htmlreport, reportdata, workflow
from ircbot_plugins.livechat.config import LivechatConfig
from ircbot_plugins.livechat.demo import build_demo
from ircbot_plugins.livechat.store import Subject, touch
from sqlalchemy.orm import Session

from ircbot.cli import main
from ircbot.clock import ManualClock
from ircbot.context import JobContext

from .conftest import Database, Team

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
MASK_ID = "~mallory@evil.example.net"  # a hostmask-mode identity: user@host
EMAIL = "mallory@mail.example.org"


def hostile_story(team: Team) -> None:
    """A trainee whose nick, note and the reason for another's rejection are markup.

    ``IMG`` (nick ``SCRIPT``, identity a user@host) is ready 30 h with two vouches, one noted
    with markup and an e-mail address; ``zed`` was rejected for a reason holding markup.
    """
    with team.unit() as u:
        person = touch(u, MASK_ID, SCRIPT, "hostile")
        workflow.register(u, person, EMAIL)
    for voucher, note in (("bob", f"{IMG} mail {EMAIL}"), ("erin", "solid")):
        with team.unit() as u:
            subject = Subject(SCRIPT, touch(u, MASK_ID, SCRIPT, "hostile"))
            workflow.vouch(u, team.who(u, voucher), subject, note)
    team.register("zed")
    team.vouch("bob", "zed", "ok")
    team.reject("carol", "zed", f"reason {SCRIPT} {IMG}")
    team.clock.advance(hours=30)


def write(db: Database, team: Team, out: Path, **kwargs) -> htmlreport.SiteStats:
    engine = htmlreport.read_only_engine(db.url)
    try:
        with Session(engine) as session, session.begin():
            return htmlreport.write_report(session, team.rules, team.clock.now(), out, **kwargs)
    finally:
        engine.dispose()


def site_text(out: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.html")))


def hostile_page(out: Path) -> str:
    """The attempt page of the hostile trainee (the one whose title holds the escaped nick)."""
    for path in (out / "attempt").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        if "<h1>&lt;script&gt;" in text:
            return text
    raise AssertionError("no page for the hostile trainee")


def test_markup_from_irc_renders_as_text_and_no_address_is_shown(
    db: Database, team: Team, tmp_path: Path
) -> None:
    hostile_story(team)
    out = tmp_path / "site"
    stats = write(db, team, out, hostmask=True)
    assert stats.attempt_pages == 2
    text = site_text(out)
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "onerror=alert(1)&gt;" in text
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in index  # the nick, in the ready table
    page = hostile_page(out)
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt; mail [address hidden]" in page  # the note
    assert "solid" in page
    rejected = next(
        p.read_text(encoding="utf-8")
        for p in (out / "attempt").glob("*.html")
        if "<h1>zed" in p.read_text(encoding="utf-8")
    )
    assert "reason &lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img src=x" in rejected
    for secret in ("evil.example.net", "~mallory", "mail.example.org", EMAIL):
        assert secret not in text


def test_public_report_leaves_notes_and_reasons_out(
    db: Database, team: Team, tmp_path: Path
) -> None:
    hostile_story(team)
    out = tmp_path / "public"
    write(db, team, out, public=True)
    text = site_text(out)
    assert "public: no notes or reasons" in text
    for private in ("solid", "onerror", "reason ", "ok</td>"):
        assert private not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the nick is still named
    assert "2/2" in text  # the bot's own details stay


def test_index_marks_the_overdue_row_and_draws_every_chart(
    db: Database, team: Team, tmp_path: Path
) -> None:
    team.register("alice")
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")
    team.clock.advance(hours=2)
    team.promote("dave", "alice")
    team.register("tom")
    team.vouch("bob", "tom")
    team.vouch("frank", "tom")
    team.clock.advance(hours=25)  # tom: ready for 25 h, past the promise
    team.register("una")
    team.vouch("erin", "una")
    team.vouch("frank", "una")  # una: ready, on time
    out = tmp_path / "site"
    write(db, team, out)
    index = (out / "index.html").read_text(encoding="utf-8")
    rows = re.findall(
        r'<tr class="(overdue|on-time)" data-attempt="\d+">\s*<td><a[^>]*>(\w+)<', index
    )
    assert rows == [("overdue", "tom"), ("on-time", "una")]
    for figure in ("funnel-all", "funnel-recent", "wait-1", "wait-2", "helpers", "coordinators"):
        block = index.split(f'id="{figure}"', 1)[1].split("</figure>", 1)[0]
        assert '<rect class="bar' in block, figure
    assert '<line class="marker"' in index.split('id="wait-2"', 1)[1]


def test_figures_are_counted_by_the_database(db: Database, team: Team) -> None:
    team.register("alice")
    team.clock.advance(hours=10)
    team.vouch("bob", "alice")
    team.vouch("erin", "alice")  # ready after 10 h
    team.clock.advance(hours=28)
    team.promote("dave", "alice")  # promoted 28 h after ready
    team.register("bea")
    team.clock.advance(days=3)
    team.withdraw("bea")
    team.register("cid")
    team.vouch("bob", "cid")
    team.vouch("frank", "cid")
    team.clock.advance(hours=1)
    team.reject("carol", "cid", "no")  # left after ready
    team.clock.advance(days=40)
    team.register("dee")  # the only attempt of the last 30 days
    now = team.clock.now()
    with team.unit() as u:
        whole = reportdata.funnel(u.session, None)
        recent = reportdata.funnel(u.session, now - dt.timedelta(days=30))
        to_ready = reportdata.histogram(u.session, "to_ready", reportdata.READY_BINS, 24)
        to_promoted = reportdata.histogram(u.session, "to_promoted", reportdata.DELAY_BINS, 24)
        helpers, n_helpers, n_vouches = reportdata.vouches_per_helper(
            u.session, now - dt.timedelta(days=90), hostmask=False
        )
        coordinators = reportdata.promotions_per_coordinator(
            u.session, now - dt.timedelta(days=90), hostmask=False
        )
    assert whole == reportdata.Funnel(
        registered=4,
        ready=2,
        promoted=1,
        training=1,
        dropped_before_ready=1,
        waiting=0,
        dropped_after_ready=1,
    )
    assert (recent.registered, recent.training, recent.ready) == (1, 1, 0)
    assert to_ready.total == 2 and to_ready.counts[0] == 2  # both under 12 h
    assert to_ready.median_hours == pytest.approx(0.0, abs=0.01)  # lower median: cid, at once
    assert to_promoted.counts == [0, 0, 0, 0, 1] + [0] * 6  # 24-30 h
    assert to_promoted.within_promise == 0 and to_promoted.median_hours == pytest.approx(28)
    assert [(h.name, h.count) for h in helpers] == [("bob", 2), ("erin", 1), ("frank", 1)]
    assert (n_helpers, n_vouches) == (3, 4)
    assert [(c.name, c.count, c.recent) for c in coordinators] == [("dave", 1, 1)]


def test_pages_only_for_open_attempts_and_the_last_90_days(
    db: Database, team: Team, tmp_path: Path
) -> None:
    team.register("old")
    team.withdraw("old")
    team.clock.advance(days=100)
    team.register("recent")
    team.withdraw("recent")
    team.register("recent")  # second attempt, open
    team.register("open")
    team.clock.advance(days=10)
    out = tmp_path / "site"
    stats = write(db, team, out)
    assert stats.attempt_pages == 3
    listing = (out / "attempts.html").read_text(encoding="utf-8")
    assert "closed in the last 90 days" in listing
    assert listing.count('<tr class="state-row-') == 3 and ">old<" not in listing
    first_recent = (out / "attempt" / "2.html").read_text(encoding="utf-8")
    assert '<a href="3.html">attempt 3</a>: training' in first_recent


def test_rewrite_replaces_a_report_and_refuses_other_folders(
    db: Database, team: Team, tmp_path: Path
) -> None:
    team.register("alice")
    out = tmp_path / "reports" / "site"
    write(db, team, out)
    (out / "attempt" / "stale.html").write_text("old", encoding="utf-8")
    write(db, team, out)
    assert not (out / "attempt" / "stale.html").exists() and (out / "index.html").exists()
    assert [p.name for p in out.parent.iterdir()] == ["site"]  # no staging folder left behind
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(htmlreport.ReportError, match="not replacing it"):
        write(db, team, other)
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_cli_writes_the_site(db: Database, team: Team, tmp_path: Path) -> None:
    hostile_story(team)
    config = tmp_path / "ircbot.toml"
    config.write_text(f'[database]\nurl = "{db.url}"\n', encoding="utf-8")
    out = tmp_path / "site"
    runner = CliRunner()
    result = runner.invoke(main, ["-c", str(config), "report", "--html", str(out), "--public"])
    assert result.exit_code == 0, result.output
    # The command reads the real clock: zed's rejection (ManualClock, 2026-01-01) is older
    # than 90 days by now, so only the open attempt has a page.
    assert re.search(r"wrote .*index\.html and 1 attempt page", result.output)
    assert "solid" not in site_text(out)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x", encoding="utf-8")
    refused = runner.invoke(main, ["-c", str(config), "report", "--html", str(tmp_path / "busy")])
    assert refused.exit_code == 2 and "holds no earlier report" in refused.output


def test_the_bot_job_rewrites_the_folder_when_due(db: Database, team: Team, tmp_path: Path) -> None:
    team.register("alice")
    out = tmp_path / "served"
    rules = LivechatConfig(report_dir=str(out), report_every=30)
    clock = ManualClock(team.clock.now())
    ctx = JobContext(session_factory=db.factory, config=rules, clock=clock, network=None)
    thread = htmlreport.maybe_rewrite(ctx.memory, db.url, rules, clock, hostmask=False)
    assert thread is not None
    thread.join(timeout=60)
    assert (out / "index.html").exists()
    clock.advance(minutes=29)
    assert htmlreport.maybe_rewrite(ctx.memory, db.url, rules, clock, hostmask=False) is None
    clock.advance(minutes=1)
    htmlreport.rewrite_report(ctx)  # the plugin's job, as the bot runs it
    ctx.memory["report.thread"].join(timeout=60)
    assert ctx.memory["report.last"] == clock.monotonic()
    unset = JobContext(
        session_factory=db.factory, config=LivechatConfig(), clock=clock, network=None
    )
    htmlreport.rewrite_report(unset)
    assert unset.memory == {}


def test_demo_database_tells_a_story(tmp_path: Path) -> None:
    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    attempts = build_demo(f"sqlite:///{tmp_path / 'demo.db'}", days=30, now=now)
    assert attempts > 30
    engine = htmlreport.read_only_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        with Session(engine) as session, session.begin():
            f = reportdata.funnel(session, None)
    finally:
        engine.dispose()
    assert f.registered >= attempts and f.promoted > 0 and f.dropped_before_ready > 0


def test_chart_geometry() -> None:
    chart = charts.columns("t", ["a", "b", "c"], [5, 10, 0], marker_after=1)
    assert [b.css for b in chart.bars] == ["bar-in", "bar-late", "bar-late"]
    assert chart.bars[1].height == pytest.approx(2 * chart.bars[0].height)
    assert chart.bars[2].height == 0
    assert chart.marker is not None and chart.marker[0] == pytest.approx(
        chart.bars[1].x - 0.12 * (chart.bars[1].width / 0.76)
    )
    bars = charts.hbars("t", [("x", [charts.Segment(3, "s1", "a"), charts.Segment(1, "s2", "b")])])
    assert [b.css for b in bars.bars] == ["s1", "s2"]
    assert bars.bars[1].x == pytest.approx(bars.bars[0].x + bars.bars[0].width)
    assert [charts.nice_ceiling(v) for v in (0, 7, 13, 240, 1001)] == [1, 10, 20, 250, 2000]

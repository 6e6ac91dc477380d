"""The HTML report in a real browser: Debian's headless Chromium, with no network at all.

``scripts/test`` installs ``chromium`` when it is missing; without it this test is skipped.
Chromium loads the written files from disk with every host name unresolvable, takes a
screenshot of each page, and prints the DOM it built (``--dump-dom``): the assertions are on
what the browser parsed, so markup typed on IRC must have stayed text there too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Database, Team
from .test_htmlreport import hostile_page, hostile_story, write

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        CHROMIUM or "chromium",
        "--headless",
        "--no-sandbox",  # the tests may run as root
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: nothing may be fetched
        "--window-size=1400,1900",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def render(page: Path, tmp_path: Path, name: str) -> str:
    """The page's screenshot (checked to be a PNG) and its DOM as Chromium built it."""
    shot = tmp_path / f"{name}.png"
    taken = chromium(page, tmp_path / "profile", f"--screenshot={shot}")
    assert shot.exists(), taken.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr
    return dom.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_pages_render_in_chromium_with_bars_overdue_rows_and_text_only(
    db: Database, team: Team, tmp_path: Path
) -> None:
    team.register("una")
    team.vouch("erin", "una")
    team.vouch("frank", "una")
    team.clock.advance(hours=3)
    team.promote("dave", "una")
    hostile_story(team)  # the hostile trainee: ready for 30 h by the end, so overdue
    out = tmp_path / "site"
    write(db, team, out, hostmask=True)

    index = render(out / "index.html", tmp_path, "index")
    for figure in ("funnel-all", "funnel-recent", "wait-1", "wait-2", "helpers", "coordinators"):
        block = index.split(f'id="{figure}"', 1)[1].split("</figure>", 1)[0]
        bars = re.findall(r'<rect class="bar [^"]+" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', block)
        assert bars and max(float(w) for w in bars) > 1, figure
    overdue = re.findall(r'<tr class="overdue" data-attempt="\d+">(.*?)</tr>', index, re.S)
    assert len(overdue) == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overdue[0] and "overdue" in overdue[0]
    assert "<script" not in index and "<img" not in index

    name = next(
        p
        for p in (out / "attempt").glob("*.html")
        if p.read_text(encoding="utf-8") == hostile_page(out)
    )
    attempt = render(name, tmp_path, "attempt")
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;" in attempt
    assert '"&gt;&lt;img src=x onerror=alert(1)&gt; mail [address hidden]' in attempt
    assert "<script" not in attempt and "<img" not in attempt
    assert 'class="badge overdue-badge"' in attempt

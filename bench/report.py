"""HTML report benchmark: ``ircbot report --html`` on the large database of ``workflow.py``.

Run: ``python bench/report.py`` (``--trainees 10000 --vouches 100000`` for a quick run). The
database is the one ``bench/workflow.py`` builds (100,000 attempts, 1,000,000 vouches, about
1.5 million audit events; generated once, then reused from its cache folder). Each figure
comes from a fresh process, so its peak resident memory is its own:

* the index alone, three times (the median against the target: under 5 s), then the whole
  site (index, listing and the pages of the open attempts and those closed in 90 days);
* the same on a database a tenth the size: the peak memory should hardly move (the rows are
  streamed, the figures counted by SQL), while the time grows with the pages written.

Nothing is asserted; PASS or FAIL is printed beside the target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import cpu_note
from workflow import cached_sqlite, large_plan

TARGET_S = 5.0

CHILD = r"""
import datetime as dt, json, sys
from pathlib import Path
from sqlalchemy.orm import Session
from ircbot_plugins.livechat import htmlreport
from ircbot_plugins.livechat.config import LivechatConfig

url, out, pages = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
engine = htmlreport.read_only_engine(url)
with Session(engine) as session, session.begin():
    stats = htmlreport.write_report(
        session, LivechatConfig(), dt.datetime.now(dt.UTC), out, hostmask=True, pages=pages
    )
# VmHWM, not ru_maxrss: after fork and exec the latter still counts the parent's pages.
status = Path("/proc/self/status").read_text().splitlines()
peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(json.dumps({"index": stats.index_seconds, "total": stats.total_seconds,
                  "pages": stats.attempt_pages, "peak_mb": peak}))
"""


def measure(db: Path, pages: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as work:
        out = Path(work) / "site"
        done = subprocess.run(
            [sys.executable, "-c", CHILD, f"sqlite:///{db}", str(out), "1" if pages else "0"],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainees", type=int, default=100_000)
    parser.add_argument("--vouches", type=int, default=1_000_000)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "livechat-bench",
        help="where bench/workflow.py keeps its generated SQLite file",
    )
    args = parser.parse_args()
    print(f"# report.py: ircbot report --html on SQLite, {cpu_note()}")
    rows = []
    for trainees, vouches, cache in (
        (args.trainees // 10, args.vouches // 10, args.cache / "tenth"),  # kept apart: the
        (args.trainees, args.vouches, args.cache),  # cache holds one file per folder
    ):
        plan = large_plan(trainees, vouches)
        db, counts, made = cached_sqlite(cache, plan, fresh=False)
        how = f"generated in {made:.0f} s" if made else "reused"
        print(f"# {plan.describe()}: {counts['audit_events']:,} audit events ({how})")
        runs = sorted((measure(db, pages=False) for _ in range(3)), key=lambda r: r["index"])
        index = runs[1]  # the median of three: the machine is shared
        site = measure(db, pages=True)
        rows.append((trainees, index, site))
        mark = "PASS" if index["index"] < TARGET_S else "FAIL"
        print(
            f"{trainees:>8,} attempts  index {index['index']:5.2f} s median of 3 (best "
            f"{runs[0]['index']:.2f} s; target < {TARGET_S:g} s {mark}), "
            f"peak RSS {index['peak_mb']:5.1f} MB"
        )
        print(
            f"{'':>8}           whole site {site['total']:5.2f} s, {site['pages']:,.0f} attempt "
            f"pages, peak RSS {site['peak_mb']:5.1f} MB"
        )
    (small, _, s_site), (large, _, l_site) = rows
    print(
        f"# memory from {small:,} to {large:,} attempts: "
        f"{s_site['peak_mb']:.1f} -> {l_site['peak_mb']:.1f} MB peak for the whole site"
    )


if __name__ == "__main__":
    main()

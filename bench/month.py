"""The month, simulated end to end: does anyone still fall through the cracks?

Run: ``python bench/month.py [--seed N] [--p-act P] [--days D]``. Drives the real bot with the
livechat plugin on a real ngircd, with real client connections for three coordinators (UTC-8,
UTC+1, UTC+8), twelve helpers and 40-60 trainees, through 30 simulated days on the bot's
injectable clock (why that and not libfaketime: ``tests/support/month/world.py``), with a
backlog import on day 1, a coordinator leaving mid-month, a hard kill of the bot and a restart
of the server. The same scenario goes through the seed's manual process
(``tests/support/month/manual.py``). Prints the seed, the parameters, the table of the issue
with both side by side, and whether the bot held its four properties (exit code 1 if not).
Target: the whole month in under 5 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.month.figures import (  # noqa: E402
    bot_figures,
    check,
    manual_figures,
    table,
)
from tests.support.month.manual import run_manual  # noqa: E402
from tests.support.month.scenario import make_plan, scaled  # noqa: E402
from tests.support.month.world import run_bot  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--p-act", type=float, default=0.5, help="chance a coordinator acts")
    parser.add_argument("--sla-hours", type=float, default=24.0)
    parser.add_argument("--first-reminder-hours", type=float, default=12.0)
    parser.add_argument("--reminder-hours", type=float, default=12.0)
    parser.add_argument("--escalate-hours", type=float, default=4.0)
    args = parser.parse_args()
    params = scaled(
        args.days,
        seed=args.seed,
        p_act=args.p_act,
        sla_hours=args.sla_hours,
        first_reminder_hours=args.first_reminder_hours,
        reminder_hours=args.reminder_hours,
        escalate_hours=args.escalate_hours,
    )
    plan = make_plan(params)
    outside = sum(t.outside for t in plan.trainees)
    print(
        f"seed {params.seed}; {params.days} days from {plan.start:%Y-%m-%d}; p(act) "
        f"{params.p_act}; sla_hours {params.sla_hours:g}, first_reminder_hours "
        f"{params.first_reminder_hours:g}, reminder_hours {params.reminder_hours:g}, "
        f"escalate_hours {params.escalate_hours:g}; {len(plan.trainees)} trainees "
        f"({outside} outside every coordinator's hours), backlog {len(plan.backlog)}; "
        f"{plan.leaver} leaves {plan.leave_at:%d %H:%M}; bot killed {plan.kill_at:%d %H:%M}, "
        f"server restarted {plan.server_restart_at:%d %H:%M}",
        flush=True,
    )
    began = time.monotonic()
    obs = run_bot(plan)
    bot = bot_figures(plan, obs)
    manual = manual_figures(plan, run_manual(plan))
    print(table(manual, bot))
    print(
        f"\n{obs.events} events in {time.monotonic() - began:.0f} s of real time; "
        f"{bot.reminders_written} SLA reminders written"
    )
    for note in obs.notes:
        print(f"  note: {note}")
    failures = check(bot)
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print("the bot held all four properties")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

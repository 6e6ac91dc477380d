"""Three days of the month's scenario on the real bot, with the bench's four checks.

``bench/month.py`` runs thirty days (the benchmark); this runs three with everything the
month has: three coordinators in three time zones (one stays connected and away off hours),
twelve helpers, trainees arriving mostly while no coordinator is there, the backlog imported
by ``ircbot trainee import`` while the bot runs, a coordinator removed, a hard kill of the bot
as a coordinator arrives and a restart of ngircd. The measures come from what the
coordinators' connections received and from the audit log (see
``tests/support/month/figures.py``).
"""

from __future__ import annotations

import pytest

from tests.support.month.figures import bot_figures, check, manual_figures, table
from tests.support.month.manual import run_manual
from tests.support.month.scenario import make_plan, scaled
from tests.support.month.world import run_bot

pytestmark = pytest.mark.timeout(180)

SEED = 3  # seven trainees, all vouched for twice within the three days


def test_three_days_nobody_falls_through_the_cracks() -> None:
    plan = make_plan(scaled(3, seed=SEED, p_act=0.5))
    obs = run_bot(plan)
    bot = bot_figures(plan, obs)
    manual = manual_figures(plan, run_manual(plan))
    print(table(manual, bot))
    assert check(bot) == []
    # The run did what the scenario says, so the checks above had something to hold.
    assert bot.ready == manual.ready >= len(plan.backlog) + 5
    assert any("is no longer a coordinator" in n for n in obs.notes), obs.notes
    assert any(n.startswith("bot killed") for n in obs.notes), obs.notes
    assert any(n.startswith("ngircd restarted") for n in obs.notes), obs.notes
    assert bot.reminders_written >= 1
    assert all(got for got in obs.received.values()), "a coordinator received nothing"
    # And the bot beats the process it replaces where the issue says it failed.
    assert manual.unreminded > 0 and manual.backlog_unreviewed == len(plan.backlog)
    assert bot.promoted > manual.promoted

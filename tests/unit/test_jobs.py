"""The job runner's rules on a clock the test moves: cadence without drift, missed runs
collapsed into one after a jump forward, and a step backwards that delays a job by one period
at most. (That a real bot process keeps answering after its clocks jump is in
``tests/livechat/test_clock_jump.py``.)"""

from __future__ import annotations

import math

import pytest

from ircbot.clock import ManualClock
from ircbot.jobs import JobRunner, clamp, next_run

DAY = 86400.0


def test_next_run_keeps_the_cadence_when_on_time_or_a_little_late():
    assert next_run(due=100.0, every=60.0, now=100.0) == 160.0
    assert next_run(due=100.0, every=60.0, now=159.0) == 160.0


def test_next_run_drops_the_missed_runs_after_a_long_delay():
    assert next_run(due=100.0, every=60.0, now=160.0) == 220.0
    assert next_run(due=100.0, every=60.0, now=100.0 + 15 * DAY) == 160.0 + 15 * DAY


def test_clamp_pulls_in_a_due_time_left_far_ahead_by_a_step_back():
    assert clamp(due=160.0, every=60.0, now=100.0) == 160.0  # within one period: unchanged
    assert clamp(due=160.0 + 15 * DAY, every=60.0, now=100.0) == 160.0


class Counter:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> None:
        self.runs += 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_a_job_runs_after_its_period_and_then_every_period(clock: ManualClock):
    runner, job = JobRunner(clock.monotonic), Counter()
    runner.add("timers", 60, job)
    assert runner.wait() == 60
    clock.advance(59.9)
    assert runner.run_due() == []
    assert runner.wait() == pytest.approx(0.1)
    clock.advance(0.6)  # half a second late: the next run stays on the minute
    assert runner.run_due() == ["timers"]
    assert runner.wait() == pytest.approx(59.5)
    clock.advance(59.5)
    assert runner.run_due() == ["timers"]
    assert job.runs == 2


def test_first_zero_runs_at_the_next_turn(clock: ManualClock):
    runner, sweep = JobRunner(clock.monotonic), Counter()
    runner.add("sweep", 60, sweep, first=0)
    assert runner.wait() == 0
    assert runner.run_due() == ["sweep"]
    assert runner.run_due() == []
    assert runner.wait() == 60


def test_fifteen_days_forward_is_one_run_not_21600(clock: ManualClock):
    runner, job, sweep = JobRunner(clock.monotonic), Counter(), Counter()
    runner.add("timers", 60, job)
    runner.add("sweep", 300, sweep, first=0)
    runner.run_due()
    clock.advance(days=15)
    assert runner.run_due() == ["timers", "sweep"]
    assert runner.run_due() == []
    assert (job.runs, sweep.runs) == (1, 2)
    assert runner.wait() == 60  # and the cadence starts again from now
    clock.advance(60)
    assert runner.run_due() == ["timers"]


def test_a_step_backwards_delays_a_job_by_one_period_at_most(clock: ManualClock):
    runner, job = JobRunner(clock.monotonic), Counter()
    runner.add("timers", 60, job)
    clock.advance(30)
    clock.advance(days=-15)  # what libfaketime, or a restored snapshot, can do
    assert runner.wait() == 60
    assert runner.run_due() == []
    clock.advance(60)
    assert runner.run_due() == ["timers"]
    assert job.runs == 1
    assert runner.wait() == 60


def test_a_failing_job_goes_up_once_and_runs_again_a_period_later(clock: ManualClock):
    runner = JobRunner(clock.monotonic)

    def broken() -> None:
        raise RuntimeError("database gone")

    runner.add("broken", 60, broken, first=0)
    with pytest.raises(RuntimeError, match="database gone"):
        runner.run_due()
    assert runner.run_due() == []  # not retried on every turn of the loop
    assert runner.wait() == 60


def test_without_jobs_there_is_nothing_to_wait_for(clock: ManualClock):
    assert JobRunner(clock.monotonic).wait() == math.inf


@pytest.mark.parametrize("every", [0, -1, math.inf, math.nan])
def test_a_period_must_be_a_positive_number(clock: ManualClock, every: float):
    with pytest.raises(ValueError, match="positive"):
        JobRunner(clock.monotonic).add("bad", every, Counter())

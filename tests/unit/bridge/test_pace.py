"""The bridge tells a trickle of jobs (flushed at once) from a pour (lingered)."""

from __future__ import annotations

from bridge.pace import BUSY_PER_S, Pace


def test_a_lone_job_after_quiet_is_a_trickle() -> None:
    pace = Pace()
    pace.took(1, now=100.0)
    assert not pace.pouring


def test_a_burst_after_quiet_is_a_trickle() -> None:
    pace = Pace()
    pace.took(1, now=100.0)
    pace.took(50, now=105.0)  # one enqueue_many after 5 s of nothing
    assert not pace.pouring


def test_jobs_arriving_faster_than_the_busy_rate_pour() -> None:
    pace = Pace()
    pace.took(1, now=100.0)
    pace.took(40, now=100.001)  # 40,000 jobs/s
    assert pace.pouring


def test_a_steady_rate_below_the_busy_rate_trickles() -> None:
    pace = Pace()
    now = 100.0
    for _ in range(100):  # one job per take, at half the busy rate
        now += 2 / BUSY_PER_S
        pace.took(1, now=now)
        assert not pace.pouring


def test_a_pour_that_slows_down_trickles_again() -> None:
    pace = Pace()
    pace.took(1, now=100.0)
    pace.took(40, now=100.001)
    pace.took(1, now=100.003)  # 1 job in 2 ms: 500 jobs/s
    assert not pace.pouring

"""Saturation: which ramp steps held, and the highest rate before the knee."""

from loadtest.saturation import (
    StepResult,
    backlog_slope,
    find_saturation,
    judge_step,
    should_stop_ramp,
)


def flat(n=10, level=50.0):
    return [(float(i), level) for i in range(n)]


def growing(rate, n=10):
    return [(float(i), rate * i) for i in range(n)]


def test_backlog_slope_fits_a_line():
    assert backlog_slope(growing(100.0)) == 100.0
    assert backlog_slope(flat()) == 0.0
    assert backlog_slope([(0.0, 5.0)]) == 0.0


def test_step_with_flat_backlog_fast_throughput_and_low_p99_is_sustained():
    verdict = judge_step(StepResult(1000, 999, 20.0, flat()), p99_target_ms=50)
    assert verdict.sustained


def test_step_fails_for_each_reason_it_names():
    verdict = judge_step(StepResult(1000, 500, 80.0, growing(500.0)), p99_target_ms=50)
    assert not verdict.sustained
    assert len(verdict.reasons) == 3


def test_saturation_is_the_last_rate_held_before_the_knee():
    steps = [StepResult(1000, 1000, 10, flat()), StepResult(2000, 2000, 20, flat()),
             StepResult(3000, 2100, 900, growing(900.0)),
             StepResult(4000, 4000, 20, flat())]  # a lucky step past the knee
    result = find_saturation(steps, p99_target_ms=50)
    assert result.sustained_per_s == 2000
    assert result.knee_index == 2
    assert result.to_dict()["steps"][2]["sustained"] is False


def test_no_sustained_step_gives_none():
    result = find_saturation([StepResult(1000, 10, 900, growing(990.0))], 50)
    assert result.sustained_per_s is None


def test_ramp_stops_after_two_failures_in_a_row():
    ok = judge_step(StepResult(1000, 1000, 1, flat()), 50)
    bad = judge_step(StepResult(1000, 10, 900, growing(990.0)), 50)
    assert not should_stop_ramp([ok, bad])
    assert should_stop_ramp([ok, bad, bad])


def test_chaos_kills_fall_inside_the_run_only():
    from loadtest.chaos import kill_offsets_s

    assert kill_offsets_s(30, 7) == [7, 14, 21, 28]
    assert kill_offsets_s(5, 10) == []


def test_plan_takes_kill_targets_in_turn_and_refuses_unknown_ones():
    import pytest

    from jobpipe.errors import ConfigError
    from loadtest.run_plan import RunPlan

    plan = RunPlan(run_dir="/tmp/x", rates=(100.0,), step_s=5, kill="bridge,worker")
    assert plan.kill_targets == ("bridge", "worker")
    with pytest.raises(ConfigError, match="--kill"):
        RunPlan(run_dir="/tmp/x", rates=(100.0,), step_s=5, kill="zookeeper")


def test_failures_before_the_first_sustained_step_are_warm_up():
    steps = [StepResult(1000, 1000, 90, flat()), StepResult(2000, 2000, 20, flat()),
             StepResult(3000, 2000, 900, growing(900.0))]
    result = find_saturation(steps, p99_target_ms=50)
    assert result.sustained_per_s == 2000
    assert result.knee_index == 2

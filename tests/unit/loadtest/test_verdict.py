"""The verdict: one sentence saying whether the pipeline kept up, never a success
banner over a run that fell behind."""

from loadtest.saturation import StepResult, find_saturation
from loadtest.verdict import ramp_verdict, run_verdict


def flat(n=20, level=40.0):
    return [(float(i), level) for i in range(n)]


def growing(rate, n=20):
    return [(float(i), rate * i) for i in range(n)]


def test_a_run_that_kept_rate_backlog_and_latency_kept_up():
    verdict = run_verdict(10_000, 9_990, 12.5, 100, flat(), 40)
    assert verdict.kept_up
    assert verdict.text.startswith("kept up: 9,990 of 10,000 jobs/s offered, backlog 40")
    assert "p99 12.5 ms (target 100 ms)" in verdict.text


def test_an_overloaded_run_says_where_it_saturated():
    # The README's old demo: 20k offered, ~9.7k done, backlog climbing, p99 seconds.
    verdict = run_verdict(20_000, 9_700, 6_500.0, 100, growing(10_300.0), 195_000)
    assert not verdict.kept_up
    assert verdict.text.startswith("not sustained: saturated near 9,700 jobs/s")
    assert "backlog 195,000 when sending ended" in verdict.text


def test_a_growing_backlog_alone_is_not_sustained_even_at_full_throughput():
    verdict = run_verdict(10_000, 9_800, 50.0, 100, growing(2_000.0), 38_000)
    assert not verdict.kept_up
    assert "saturated near 9,800" in verdict.text


def test_rate_held_but_latency_missed_is_said_as_such():
    verdict = run_verdict(10_000, 10_000, 450.0, 100, flat(), 40)
    assert not verdict.kept_up
    assert verdict.text.startswith("not sustained: kept the rate but missed the latency")
    assert "saturated" not in verdict.text


def test_lost_jobs_come_first_even_when_it_kept_up():
    verdict = run_verdict(1_000, 1_000, 5.0, 100, flat(), 0, lost=3)
    assert not verdict.kept_up
    assert verdict.text.startswith("3 jobs LOST; kept up")


def test_a_run_without_backlog_samples_says_n_a():
    verdict = run_verdict(1_000, 1_000, 5.0, 100, [], None)
    assert verdict.kept_up
    assert "backlog n/a" in verdict.text


def test_ramp_names_the_rate_held_and_where_it_broke():
    steps = [StepResult(10_000, 10_000, 10, flat()), StepResult(20_000, 19_900, 20, flat()),
             StepResult(30_000, 24_000, 900, growing(6_000.0))]
    verdict = ramp_verdict(find_saturation(steps, 100))
    assert not verdict.kept_up
    assert verdict.text.startswith("sustained up to 20,000 jobs/s; saturated near 24,000")


def test_ramp_that_held_everywhere_says_no_saturation_found():
    steps = [StepResult(1_000, 1_000, 10, flat()), StepResult(2_000, 2_000, 10, flat())]
    verdict = ramp_verdict(find_saturation(steps, 100))
    assert verdict.kept_up
    assert "up to 2,000 jobs/s: no saturation within the ramp" in verdict.text


def test_ramp_failing_from_the_first_step_says_so():
    steps = [StepResult(50_000, 20_000, 3_000, growing(30_000.0))]
    verdict = ramp_verdict(find_saturation(steps, 100))
    assert not verdict.kept_up
    assert verdict.text.startswith("not sustained at any step: saturated near 20,000")


def test_ramp_capacity_is_the_most_done_past_the_knee_not_the_knee_step_alone():
    # A first step missed during warm-up, later steps finishing more: the
    # pipeline saturated near the most it finished, not near the warm-up step.
    steps = [StepResult(500, 470, 1_400, flat()), StepResult(1_000, 900, 1_200, flat()),
             StepResult(2_500, 1_660, 7_000, growing(800.0)),
             StepResult(3_000, 1_620, 10_000, growing(1_400.0))]
    verdict = ramp_verdict(find_saturation(steps, 100))
    assert verdict.text.startswith("not sustained at any step: saturated near 1,660 jobs/s "
                                   "(first missed at 500 offered")

"""The open-loop schedule: intended send times and producer shares."""

import pytest

from jobpipe.errors import ConfigError
from loadtest.schedule import NS_PER_S, ProducerShare, Schedule, parse_ramp
from loadtest.workload import HandlerTime, TenantMix, padding


def test_constant_schedule_spaces_jobs_evenly():
    schedule = Schedule.constant(1000, 2.0)
    assert schedule.total_jobs == 2000
    assert schedule.offset_ns(0) == 0
    assert schedule.offset_ns(1) == NS_PER_S // 1000
    assert schedule.offset_ns(1999) == 1999 * NS_PER_S // 1000


def test_due_counts_jobs_whose_time_has_come():
    schedule = Schedule.constant(100, 1.0)
    assert schedule.due(0.0) == 0
    assert schedule.due(0.0001) == 1
    assert schedule.due(0.5) == 51
    assert schedule.due(5.0) == 100


def test_ramp_steps_follow_one_another():
    schedule = Schedule.ramp(parse_ramp("100:300:100"), 1.0)
    assert [s.rate_per_s for s in schedule.steps] == [100, 200, 300]
    assert schedule.total_jobs == 600
    assert schedule.offset_ns(100) == NS_PER_S  # first job of step 2
    assert schedule.offset_ns(101) == NS_PER_S + NS_PER_S // 200
    assert schedule.due(1.5) == 100 + 101
    assert schedule.step_at(2.5).rate_per_s == 300


def test_producer_shares_partition_the_jobs():
    schedule = Schedule.constant(1000, 1.0)
    shares = [ProducerShare(schedule, i, 3) for i in range(3)]
    seen = sorted(j for share in shares for j in share.due_jobs(10.0, 10_000))
    assert seen == list(range(1000))
    assert all(share.finished for share in shares)


def test_producer_share_hands_out_late_jobs_at_once_up_to_the_limit():
    share = ProducerShare(Schedule.constant(1000, 1.0), 0, 1)
    assert share.due_jobs(0.5, 100) == list(range(100))
    assert len(share.due_jobs(0.5, 10_000)) == 401


@pytest.mark.parametrize("text", ["1:2", "a:b:c", "5:1:1", "0:10:1", "1:10:0"])
def test_bad_ramps_are_refused_with_one_clear_error(text):
    with pytest.raises(ConfigError, match="--ramp"):
        parse_ramp(text)


def test_handler_time_parses_constant_and_exponential():
    assert HandlerTime.parse("0").mean_ms == 0
    assert HandlerTime.parse("5") == HandlerTime("const", 5.0)
    assert HandlerTime.parse("exp:5") == HandlerTime("exp", 5.0)
    with pytest.raises(ConfigError, match="--handler-ms"):
        HandlerTime.parse("gauss:5")


def test_tenant_skew_favours_the_first_tenant():
    mix = TenantMix(4, 1.0)
    assert mix.weights()[0] == 1.0
    assert mix.weights()[3] == 0.25
    picks = mix.chooser(7).pick(4000)
    assert picks.count("t000") > picks.count("t003")
    assert TenantMix(0).chooser(1).pick(3) == [None, None, None]


def test_padding_makes_args_about_the_asked_size():
    assert len(padding(100)) == 70
    assert padding(10) == ""


def test_offsets_of_many_jobs_equal_their_offsets_one_by_one():
    schedule = Schedule.ramp([1000.0, 3000.0, 500.0], 2.0)
    indices = [0, 1, 1999, 2000, 2001, 7999, 8000, schedule.total_jobs - 1]
    assert schedule.offsets_ns(indices) == [schedule.offset_ns(i) for i in indices]

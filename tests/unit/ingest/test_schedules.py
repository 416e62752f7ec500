"""Fire times, the due rule and the missed-fire policies, without Redis or a clock."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.schedules import due, fire_key, fires_after, latest_at_or_before, next_fires
from jobpipe.errors import ConfigError
from jobpipe.schedule import ScheduleSpec
from jobpipe.settings import load_settings

S = 1000


def spec(**fields: Any) -> ScheduleSpec:
    fields.setdefault("interval_s", None if "cron" in fields else 10)
    return ScheduleSpec("tick", queue="default", task="t", **fields)


def ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def test_interval_fires_at_multiples_since_the_epoch() -> None:
    every10 = spec(interval_s=10)
    assert list(islice(fires_after(every10, 95_500), 3)) == [100 * S, 110 * S, 120 * S]
    assert list(islice(fires_after(every10, 100 * S), 1)) == [110 * S]  # strictly after
    assert latest_at_or_before(every10, 100 * S) == 100 * S
    assert latest_at_or_before(every10, 109_999) == 100 * S


def test_cron_is_read_in_its_time_zone() -> None:
    paris = spec(cron="30 9 * * *", timezone="Europe/Paris")
    [first] = next_fires(paris, ms("2026-01-10T12:00:00+00:00"), 1)
    assert first.isoformat() == "2026-01-11T09:30:00+01:00"
    assert latest_at_or_before(paris, ms("2026-01-11T08:30:00+00:00")) == ms(
        "2026-01-11T09:30:00+01:00")
    assert latest_at_or_before(paris, ms("2026-01-11T08:29:59.999+00:00")) == ms(
        "2026-01-10T09:30:00+01:00")


def test_six_fields_put_seconds_first() -> None:
    every5s = spec(cron="*/5 * * * * *")
    start = ms("2026-01-10T12:00:01+00:00")
    assert list(islice(fires_after(every5s, start), 2)) == [start + 4 * S, start + 9 * S]


def test_dst_gap_and_overlap_fire_once_a_day() -> None:
    """02:30 does not exist in Paris on 29 March 2026 and happens twice on 25 October:
    the job runs at 03:00 on the first day and once, at the first 02:30, on the second."""
    nightly = spec(cron="30 2 * * *", timezone="Europe/Paris")
    spring = [d.isoformat() for d in next_fires(nightly, ms("2026-03-28T12:00:00+00:00"), 3)]
    assert spring == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
                      "2026-03-31T02:30:00+02:00"]
    autumn = [d.isoformat() for d in next_fires(nightly, ms("2026-10-24T12:00:00+00:00"), 2)]
    assert autumn == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_a_new_schedule_starts_at_its_next_fire_time() -> None:
    assert due(spec(), None, 1_000 * S).fire == []


def test_each_fire_time_on_time_runs_once_across_passes() -> None:
    every10 = spec(interval_s=10, grace_s=30)
    first = due(every10, 100 * S, 125 * S)
    assert first.fire == [110 * S, 120 * S]
    assert not first.missed
    assert due(every10, 125 * S, 125 * S).fire == []
    assert due(every10, 125 * S, 130 * S).fire == [130 * S]


@pytest.mark.parametrize(("policy", "expected"), [("skip", []), ("run_once", [940 * S])])
def test_missed_fire_times_are_skipped_or_run_once(policy: str, expected: list[int]) -> None:
    """Down from 100 s to 975 s: fire times older than 30 s were missed."""
    every10 = spec(interval_s=10, grace_s=30, misfire=policy)
    pending = due(every10, 100 * S, 975 * S)
    assert pending.missed == 84  # 110 s .. 940 s
    assert pending.skipped == 84 - len(expected)
    assert pending.fire == [*expected, 950 * S, 960 * S, 970 * S]
    late = due(every10, 100 * S, 975 * S + 60 * S)  # nothing on time is left
    assert late.missed == 90  # 110 s .. 1000 s
    assert late.fire == ([1000 * S] if policy == "run_once" else []) + [
        t * S for t in (1010, 1020, 1030)]


def test_run_once_runs_the_latest_missed_cron_fire() -> None:
    hourly = spec(cron="0 * * * *", grace_s=30, misfire="run_once")
    back = ms("2026-01-10T12:20:00+00:00")
    pending = due(hourly, ms("2026-01-10T09:00:00+00:00"), back)
    assert (pending.missed, pending.skipped) == (3, 2)  # 10:00, 11:00, 12:00
    assert pending.fire == [ms("2026-01-10T12:00:00+00:00")]
    assert due(spec(cron="0 * * * *", grace_s=30), ms("2026-01-10T09:00:00+00:00"),
               back).fire == []


def test_fire_key_names_schedule_and_time() -> None:
    assert fire_key("tick", 1_700_000_000_000) == "schedule:tick:1700000000000"


def settings_with(schedule: dict[str, Any]) -> None:
    load_settings(None, environ={}, overrides={
        "queues": {"default": {"priorities": [1, 1]}},
        "schedules": {"nightly": {"queue": "default", "task": "t", **schedule}}})


@pytest.mark.parametrize(("schedule", "message"), [
    ({"cron": "61 * * * *"}, "schedules.nightly.cron: '61 * * * *' is not a cron expression"),
    ({"cron": "* * *"}, "schedules.nightly.cron: '* * *' is not a cron expression"),
    ({"interval_s": 5, "timezone": "Mars/Base"}, "schedules.nightly.timezone: unknown time zone"),
    ({"interval_s": 5, "queue": "nope"}, "schedules.nightly.queue: unknown queue 'nope'"),
    ({"interval_s": 5, "priority": 2}, "schedules.nightly.priority: queue 'default' has levels"),
    ({"interval_s": 5, "misfire": "often"}, "schedules.nightly.misfire: must be one of"),
    ({"interval_s": 0}, "schedules.nightly.interval_s: must be a whole number"),
    ({"interval_s": 1.5}, "schedules.nightly.interval_s: expected int"),
    ({}, "schedules.nightly: give cron or interval_s"),
    ({"cron": "* * * * *", "interval_s": 5}, "schedules.nightly: give cron or interval_s"),
    ({"interval_s": 5, "colour": 1}, "schedules.nightly: unknown key 'colour'"),
])
def test_a_bad_schedule_is_one_line_naming_it_and_the_key(schedule: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with(schedule)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_time_zone_defaults_to_utc_explicitly() -> None:
    assert spec().timezone == "UTC"
    assert next_fires(spec(cron="0 0 * * *"), 0, 1)[0].tzinfo is not None
    assert next_fires(spec(cron="0 0 * * *"), 0, 1)[0] == datetime(1970, 1, 2, tzinfo=UTC)


@given(gaps=st.lists(st.integers(min_value=0, max_value=40_000), min_size=1, max_size=40),
       interval_s=st.integers(min_value=1, max_value=15))
def test_passes_closer_than_the_grace_fire_every_time_once(gaps: list[int],
                                                           interval_s: int) -> None:
    """Whatever the pass times, as long as passes are at most ``grace_s`` apart,
    the passes together fire each fire time in the window once, none missed."""
    every = spec(interval_s=interval_s, grace_s=40)
    start = last = 1_000_000
    fired: list[int] = []
    now = start
    for gap in gaps:
        now += gap
        step = due(every, last, now)
        assert not step.missed
        fired += step.fire
        last = max(last, now)
    expected = [t for t in islice(fires_after(every, start), 10_000) if t <= now]
    assert fired == expected

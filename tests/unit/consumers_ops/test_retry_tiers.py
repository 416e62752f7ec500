"""Retry tier decisions: routes, due times, target level."""

from __future__ import annotations

import pytest

from consumers.retry.tiers import (
    jitter_header,
    jitter_ms,
    next_wake_s,
    tier_routes,
    wait_ms,
)
from jobpipe import names
from jobpipe.topology import QueueSpec


def test_tier_routes_map_each_tier_topic_to_its_queue_and_delay():
    a = QueueSpec("a", retry_tiers_s=(0.5, 5))
    b = QueueSpec("b", retry_tiers_s=(60,))
    routes = tier_routes("ns", [a, b])
    assert set(routes) == {names.retry_topic("ns", "a", 0.5), names.retry_topic("ns", "a", 5),
                           names.retry_topic("ns", "b", 60)}
    route = routes[names.retry_topic("ns", "a", 0.5)]
    assert route.spec is a
    assert route.delay_ms == 500


def test_wait_is_timestamp_plus_delay_minus_now():
    assert wait_ms(10_000, 5000, 12_000) == 3000
    assert wait_ms(10_000, 5000, 15_000) == 0
    assert wait_ms(10_000, 5000, 99_000) == 0


def test_a_message_without_timestamp_is_due_at_once():
    assert wait_ms(None, 5000, 1) == 0
    assert wait_ms(-1, 5000, 1) == 0


def test_a_future_timestamp_never_holds_longer_than_the_delay():
    assert wait_ms(1_000_000, 5000, 1000) == 5000
    assert wait_ms(1_000_000, 5000, 1000, jitter=700) == 5700


def test_jitter_is_added_to_the_wait():
    assert wait_ms(10_000, 5000, 12_000, jitter=400) == 3400
    assert wait_ms(10_000, 5000, 15_399, jitter=400) == 1
    assert wait_ms(10_000, 5000, 15_400, jitter=400) == 0


def test_jitter_header_round_trips_and_bad_values_mean_none():
    assert jitter_ms([jitter_header(0.4567)], 5000) == 457
    assert jitter_ms([("other", b"9"), jitter_header(1.0)], 5000) == 1000
    assert jitter_ms(None, 5000) == 0
    assert jitter_ms([("jp-retry-jitter-ms", b"soon")], 5000) == 0
    assert jitter_ms([("jp-retry-jitter-ms", None)], 5000) == 0
    assert jitter_ms([jitter_header(3600.0)], 5000) == 5000  # capped at the tier delay


def test_next_wake_is_the_earliest_due_time_capped_by_idle():
    assert next_wake_s([], 0, 0.5) == 0.5
    assert next_wake_s([1200, 1100], 1000, 0.5) == pytest.approx(0.1)
    assert next_wake_s([5000], 1000, 0.5) == 0.5
    assert next_wake_s([900], 1000, 0.5) == 0.0

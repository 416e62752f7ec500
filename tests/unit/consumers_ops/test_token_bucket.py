"""Token bucket arithmetic (the model the Lua script follows)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumers.token_bucket import Bucket, Limit, burst_for, idle_ttl_ms, refill, take


def test_burst_is_one_second_of_jobs_and_at_least_one():
    assert burst_for(50) == 50
    assert burst_for(0.2) == 1


def test_a_missing_bucket_is_full():
    assert refill(None, Limit(10), 1000) == 10


def test_refill_adds_rate_per_second_up_to_the_burst():
    assert refill(Bucket(0, 0), Limit(10), 500) == 5
    assert refill(Bucket(9, 0), Limit(10), 10_000) == 10
    assert refill(Bucket(3, 1000), Limit(10), 900) == 3  # clock went back: no refill


def test_take_takes_one_token_from_every_bucket():
    new, wait = take([Bucket(5, 0), None], [Limit(10), Limit(2)], 0)
    assert wait == 0
    assert new == [Bucket(4, 0), Bucket(1, 0)]


def test_take_takes_nothing_and_says_how_long_to_wait_when_any_bucket_is_short():
    new, wait = take([Bucket(5, 0), Bucket(0.5, 0)], [Limit(10), Limit(2)], 0)
    assert new is None
    assert wait == 250  # half a token at 2/s


def test_idle_ttl_covers_a_full_refill():
    assert idle_ttl_ms(Limit(10)) == 2000


@given(rate=st.floats(0.5, 1000), steps=st.lists(st.floats(0, 2000), min_size=1, max_size=60))
def test_admitted_jobs_never_exceed_rate_times_time_plus_burst(rate, steps):
    limit = Limit(rate)
    bucket: Bucket | None = None
    now = 0.0
    admitted = 0
    for step in steps:
        now += step
        new, _wait = take([bucket], [limit], now)
        if new is not None:
            bucket = new[0]
            admitted += 1
    assert admitted <= rate * now / 1000 + limit.burst + 1e-6


@given(rate=st.floats(0.5, 1000), tokens=st.floats(0, 0.999))
def test_waiting_the_returned_time_always_yields_a_token(rate, tokens):
    limit = Limit(rate)
    new, wait = take([Bucket(tokens, 0)], [limit], 0)
    assert new is None
    again, _ = take([Bucket(tokens, 0)], [limit], wait)
    assert again is not None

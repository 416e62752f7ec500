"""The bridge's idle wait: what ends it, read with the due times in one round trip.

The wait sends the ``ZRANGE`` of each delayed set ahead of its ``BZPOPMIN``
in one write, so a wake-up raised before the wait began can arrive with the
``ZRANGE`` replies and be read with them; the wait must still end at once.
Every wait here may last 10 s; the bounds are five times shorter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bridge.wake import Waker
from jobpipe import names
from jobpipe.settings import Settings
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]

LONGEST_S = 10.0
WITHIN_S = 2.0
QUEUES = ("default", "other")  # on a cluster: two slots, two primaries, two waits


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings(queues={q: {"partitions": 1} for q in QUEUES})


@pytest.fixture
def waker(settings: Settings, redis_client) -> Iterator[Waker]:
    w = Waker(redis_client, settings.namespace, settings.topology.select(list(QUEUES)),
              "wait-test")
    try:
        yield w
    finally:
        w.close()


def _timed_wait(waker: Waker, longest_s: float = LONGEST_S) -> tuple[bool, float]:
    started = time.monotonic()
    woke = waker.wait(longest_s)
    return woke, time.monotonic() - started


def _wake(client, settings: Settings, queue: str) -> None:
    client.zadd(names.wake_key(settings.namespace, queue), {names.WAKE_MEMBER: 0})


def _delay(client, settings: Settings, queue: str, due_in_s: float) -> None:
    due_ms = time.time_ns() // 1_000_000 + int(due_in_s * 1000)
    client.zadd(names.delayed_key(settings.namespace, queue), {b"job": due_ms})


@pytest.mark.parametrize("queue", QUEUES)
def test_a_wake_up_raised_before_the_wait_ends_it_at_once(waker, settings, redis_client,
                                                          queue):
    _wake(redis_client, settings, queue)
    woke, took_s = _timed_wait(waker)
    assert woke
    assert took_s < WITHIN_S
    assert redis_client.zcard(names.wake_key(settings.namespace, queue)) == 0


def test_a_wait_left_running_is_read_by_the_next_wait(waker, settings, redis_client):
    _wake(redis_client, settings, "other")
    assert waker.wait(LONGEST_S)  # the wait's connections are open from here on
    waker.arm(LONGEST_S)  # as while waiting for Kafka: the next wait finds it running
    _wake(redis_client, settings, "default")
    woke, took_s = _timed_wait(waker)
    assert woke
    assert took_s < WITHIN_S


def test_a_wait_left_running_still_ends_when_a_delayed_job_is_due(waker, settings,
                                                                 redis_client):
    waker.arm(LONGEST_S)  # its delayed sets are then read through the client
    _delay(redis_client, settings, "other", 0.5)
    woke, took_s = _timed_wait(waker)
    assert not woke
    assert 0.3 < took_s < WITHIN_S


@pytest.mark.parametrize("queue", QUEUES)
def test_a_delayed_job_ends_the_wait_when_due(waker, settings, redis_client, queue):
    _delay(redis_client, settings, queue, 0.5)
    woke, took_s = _timed_wait(waker)
    assert not woke
    assert 0.3 < took_s < WITHIN_S


def test_a_due_job_ends_the_wait_at_once_and_a_waiting_wake_up_is_kept(
        waker, settings, redis_client):
    _delay(redis_client, settings, "default", -1.0)
    _wake(redis_client, settings, "other")
    woke, took_s = _timed_wait(waker)
    assert not woke  # False: the caller promotes first
    assert took_s < WITHIN_S
    redis_client.delete(names.delayed_key(settings.namespace, "default"))  # as promoted
    woke, took_s = _timed_wait(waker)
    assert woke  # the wake-up was not lost
    assert took_s < WITHIN_S


def test_with_nothing_to_wake_it_the_wait_lasts_its_longest(waker):
    woke, took_s = _timed_wait(waker, 0.5)
    assert not woke
    assert 0.4 < took_s < WITHIN_S


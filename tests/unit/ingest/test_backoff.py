"""Retry budget: full jitter under a capped ceiling, give up at the deadline."""

from __future__ import annotations

from ingest.backoff import Attempts, Backoff


def test_ceiling_doubles_then_caps():
    backoff = Backoff(base_s=0.01, cap_s=0.05)
    assert [backoff.ceiling_s(n) for n in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]


def test_delay_is_a_random_fraction_of_the_ceiling():
    assert Backoff(base_s=0.1, cap_s=1.0, rng=lambda: 0.5).delay_s(1) == 0.1
    assert Backoff(base_s=0.1, cap_s=1.0, rng=lambda: 0.0).delay_s(3) == 0.0


def test_down_retries_stop_at_the_deadline_and_never_overshoot_it():
    attempts = Attempts(100.0, down_deadline_s=1.0, block=False, block_timeout_s=0,
                        backoff=Backoff(base_s=10, cap_s=10, rng=lambda: 0.99))
    assert attempts.after_down(100.5) == 0.5
    assert attempts.after_down(101.0) is None


def test_full_queue_raises_at_once_unless_blocking():
    assert Attempts(0.0, 10, block=False, block_timeout_s=5).after_full(0.0) is None
    blocking = Attempts(0.0, 10, block=True, block_timeout_s=5, backoff=Backoff(rng=lambda: 1))
    first = blocking.after_full(1.0)
    assert first is not None
    assert first > 0
    assert blocking.after_full(5.9) is not None
    assert blocking.after_full(6.0) is None

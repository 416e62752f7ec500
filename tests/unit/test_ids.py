"""Job ids made in bulk: valid UUIDv7, unique, and in creation order."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from jobpipe import ids
from jobpipe.ids import new_job_ids


def _ms(job_id: str) -> int:
    return uuid.UUID(job_id).int >> 80


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ids._IdClock:
    """A fresh id clock, so bending time does not leak into other tests."""
    fresh = ids._IdClock()
    monkeypatch.setattr(ids, "_CLOCK", fresh)
    return fresh


@pytest.mark.usefixtures("clock")
def test_ids_are_uuid7_strings_carrying_the_given_millisecond() -> None:
    now = 1_795_000_000_123_456_789
    made = new_job_ids(3, now) + new_job_ids(1, now)
    for job_id in made:
        parsed = uuid.UUID(job_id)
        assert str(parsed) == job_id
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert _ms(job_id) == now // 1_000_000


def test_a_batch_is_unique_and_sorted_across_counter_runs() -> None:
    batch = new_job_ids(20_000)  # several runs of 4096 sharing their first 33 characters
    assert len(set(batch)) == len(batch)
    assert batch == sorted(batch)


@pytest.mark.usefixtures("clock")
def test_later_calls_sort_after_earlier_ones_in_the_same_millisecond() -> None:
    now = 1_795_000_000_000_000_000
    calls = [new_job_ids(n, now) for n in (1, 5000, 1, 3, 4097)]
    flat = [job_id for call in calls for job_id in call]
    assert len(set(flat)) == len(flat)
    assert flat == sorted(flat)
    assert {_ms(job_id) for job_id in flat} == {_ms(calls[0][0])}


@pytest.mark.usefixtures("clock")
def test_a_clock_stepping_back_keeps_ids_increasing() -> None:
    later = new_job_ids(2, 1_900_000_000_000_000_000)
    earlier = new_job_ids(2, 1_800_000_000_000_000_000)
    assert later + earlier == sorted(later + earlier)
    assert _ms(earlier[0]) == _ms(later[0])


def test_an_exhausted_counter_borrows_the_next_millisecond(clock: ids._IdClock) -> None:
    now = 1_795_000_000_000_000_000
    first = new_job_ids(1, now)[0]
    clock._next = (1 << 48) - 2
    more = new_job_ids(3, now)
    assert [first, *more] == sorted([first, *more])
    assert _ms(more[0]) == _ms(first) + 1


def test_empty_and_negative_counts_give_no_ids() -> None:
    assert new_job_ids(0) == []
    assert new_job_ids(-1) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_random_bits() -> None:
    now = time.time_ns()  # the process's own clock: fork resets exactly that one
    parent = new_job_ids(1, now)[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next id of the same millisecond, then leave
        os.write(write, new_job_ids(1, now)[0].encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    after = new_job_ids(1, now)[0]
    assert child[:24] != parent[:24]  # not the parent's random bits and counter
    assert after[:24] == parent[:24]  # the parent carries on with its own


def test_threads_never_share_an_id() -> None:
    made: list[list[str]] = []

    def work() -> None:
        made.append([job_id for _ in range(200) for job_id in new_job_ids(50)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [job_id for batch in made for job_id in batch]
    assert len(flat) == len(set(flat)) == 4 * 200 * 50
    assert all(batch == sorted(batch) for batch in made)

"""The order of a job's states, across the generations replays start."""

from __future__ import annotations

from jobpipe import jobstatus
from jobpipe.envelope import Job


def test_the_generation_is_the_replay_count_of_the_job() -> None:
    assert jobstatus.generation({}) == 0
    assert jobstatus.generation({"replays": "2"}) == 2
    assert jobstatus.generation({"replays": "not a number"}) == 0
    assert jobstatus.rank("failed", 9) < jobstatus.rank("queued", 1, generation=1)
    assert jobstatus.rank("running", 5, generation=1) < jobstatus.rank("succeeded", 1,
                                                                         generation=1)


def test_an_update_of_a_job_carries_its_attempt_and_generation() -> None:
    job = Job(id="j", queue="q", task="t", args=None, attempt=2, meta={"replays": "1"})
    update = jobstatus.Update.of(job, jobstatus.RUNNING, {"worker": "w"})
    assert (update.job_id, update.attempt, update.generation) == ("j", 2, 1)
    assert update.fields == {"worker": "w"}


def _per_key(keys: list[str], args: list[str | int]) -> list[tuple[str, tuple[str | int, ...]]]:
    """Each key of an ADVANCE_LUA call with the group (rank, ttl, final, body) it gets."""
    out, k = [], 0
    for a in range(0, len(args), 5):
        n = int(args[a])
        out += [(key, tuple(args[a + 1 : a + 5])) for key in keys[k : k + n]]
        k += n
    assert k == len(keys)
    return out


def test_a_big_advance_call_is_split_into_bounded_calls_keeping_each_key_its_group() -> None:
    keys = [f"k{i}" for i in range(23)]
    args: list[str | int] = [10, 11, 60, 0, "a", 1, 12, 60, 0, "b", 12, 13, 60, 1, "c"]
    calls = jobstatus.split_advance(keys, args, most=4)
    assert [len(k) for k, _ in calls] == [4, 4, 4, 4, 4, 3]
    assert [pair for k, a in calls for pair in _per_key(k, a)] == _per_key(keys, args)
    assert jobstatus.split_advance(keys, args, most=23) == [(keys, args)]

"""The order of a job's states, across the generations replays start."""

from __future__ import annotations

from jobpipe import jobstatus, names
from jobpipe.envelope import Job, encode
from jobpipe.topology import QueueSpec


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


def _per_job(calls: list[jobstatus.Call]) -> list[tuple[str, str, tuple[str | int, ...]]]:
    """Each job of ADVANCE_LUA calls with its hash and the group (rank, body) it gets."""
    out = []
    for keys, args in calls:
        a = 1
        for key in keys:
            groups, a = int(args[a]), a + 1
            for _ in range(groups):
                n = int(args[a])
                out += [(key, str(job_id), tuple(args[a + 1 : a + 3]))
                        for job_id in args[a + 3 : a + 3 + n]]
                a += 3 + n
        assert a == len(args)
    return out


def _ids(ms: int, n: int) -> list[str]:
    """UUIDv7-shaped ids of millisecond ``ms``."""
    stamp = f"{ms:012x}"
    return [f"{stamp[:8]}-{stamp[8:]}-7000-8000-{i:012x}" for i in range(n)]


def test_updates_go_by_state_hash_in_bounded_calls_each_job_keeping_its_group() -> None:
    spec = QueueSpec("q", track_status=True)
    # ids made 1 s apart fall in different hashes; three states
    ids = _ids(1_700_000_000_000, 9) + _ids(1_700_000_001_000, 14)
    states = [jobstatus.QUEUED, jobstatus.RUNNING, jobstatus.SUCCEEDED]
    updates = [jobstatus.Update(i, states[n % 3], 1, {}) for n, i in enumerate(ids)]
    calls = jobstatus.advance_calls("ns", spec, updates, most=4)
    assert [sum(1 for _ in _per_job([c])) for c in calls] == [4, 4, 4, 4, 4, 3]
    assert all(args[0] == spec.status_ttl_s for _, args in calls)
    whole = _per_job(jobstatus.advance_calls("ns", spec, updates, most=100))
    assert len(jobstatus.advance_calls("ns", spec, updates, most=100)) == 1
    def where(jobs: list[tuple[str, str, tuple[str | int, ...]]]) -> list[tuple[str, str, int]]:
        return sorted((key, job_id, int(group[0])) for key, job_id, group in jobs)  # not the time

    assert where(_per_job(calls)) == where(whole)
    assert {key for key, _, _ in whole} == {names.job_states_key("ns", "q", ids[0]),
                                             names.job_states_key("ns", "q", ids[-1])}
    assert names.job_states_key("ns", "q", ids[0]) != names.job_states_key("ns", "q", ids[-1])
    for key, job_id, (rank, _body) in whole:
        n = ids.index(job_id)
        assert key == names.job_states_key("ns", "q", job_id)
        assert rank == jobstatus.rank(states[n % 3], 1)


def test_a_queue_keeping_results_keeps_its_records_for_the_longer_ttl() -> None:
    assert jobstatus.record_ttl_s(QueueSpec("q", track_status=True, status_ttl_s=100)) == 100
    assert jobstatus.record_ttl_s(QueueSpec("q", track_status=True, keep_results=True,
                                            status_ttl_s=100, result_ttl_s=300)) == 300


def test_the_same_update_of_many_jobs_writes_what_one_update_per_job_would() -> None:
    spec = QueueSpec("q", track_status=True)
    ids = _ids(1_700_000_000_000, 5) + _ids(1_700_000_001_000, 3)
    one_each = [jobstatus.Update(i, jobstatus.SUCCEEDED, 2, {}, 1) for i in ids]
    many = [jobstatus.SameUpdate(ids, jobstatus.SUCCEEDED, 2, 1)]

    def written(updates: list[jobstatus.Update] | list[jobstatus.SameUpdate]) -> list[object]:
        return [(key, job_id, group[0]) for key, job_id, group
                in _per_job(jobstatus.advance_calls("ns", spec, updates, most=3))]

    assert written(many) == written(one_each)
    assert {rank for *_, rank in written(many)} == {jobstatus.rank(jobstatus.SUCCEEDED, 2, 1)}


def test_the_bridge_moves_a_batch_as_one_update_per_job_would() -> None:
    spec = QueueSpec("q", track_status=True)
    ids = _ids(1_700_000_000_000, 4) + _ids(1_700_000_001_000, 3)

    def raw(job_id: str, replays: int) -> bytes:
        meta = {"replays": str(replays)} if replays else {}
        return encode(Job(id=job_id, queue="q", task="t", key="k" if replays else None,
                          meta=meta))

    def where(calls: list[jobstatus.Call]) -> list[tuple[str, str, int]]:
        return sorted((key, job_id, int(group[0])) for key, job_id, group in _per_job(calls))

    for replays in ([0] * 7, [0, 2, 0, 0, 0, 1, 0]):  # the usual batch, and one with replays
        raws = [raw(i, r) for i, r in zip(ids, replays, strict=True)] + [b"not a job"]
        each = [jobstatus.Update(i, jobstatus.IN_KAFKA, 1, {}, r)
                for i, r in zip(ids, replays, strict=True)]
        moved = jobstatus.advance_all_calls("ns", spec, raws, jobstatus.IN_KAFKA, most=3)
        assert where(moved) == where(jobstatus.advance_calls("ns", spec, each))
        assert len(moved) == 3


def test_ids_go_by_the_hash_of_their_records_in_order() -> None:
    ids = _ids(1_700_000_000_000, 3) + _ids(1_700_000_001_000, 2) + _ids(1_700_000_000_000, 1)
    assert jobstatus.by_state_hash("ns", "q", ids) == {
        names.job_states_key("ns", "q", ids[0]): [ids[0], ids[1], ids[2], ids[5]],
        names.job_states_key("ns", "q", ids[3]): [ids[3], ids[4]]}

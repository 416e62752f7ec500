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

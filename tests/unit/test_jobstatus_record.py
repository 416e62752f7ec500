"""The job record's text layout, read back as a lookup sees it (pure; the Lua side
is exercised against real Redis in tests/integration/jobstatus/)."""

from __future__ import annotations

from jobpipe import jobstatus


def test_a_new_record_reads_back_with_its_state_time_and_details() -> None:
    record = jobstatus.new_record(jobstatus.DELAYED, 7, {"run_at": 99}).encode()
    status = jobstatus.JobStatus.from_record("j", "q", record)
    assert (status.state, status.attempt, status.at_ns) == ("delayed", 1, 7)
    assert status.details == {"run_at": 99}
    assert record.startswith(b"11||")  # rank of attempt 1's delayed, no cancel request
    assert not jobstatus.cancel_asked(record)


def test_details_survive_separators_and_a_cancel_request_is_shown() -> None:
    body = jobstatus.record_body(jobstatus.FAILED, 2, 5, {"reason": "rejected",
                                                          "error": "ValueError: a|b|c"})
    record = f"{jobstatus.FINAL_RANK}|123|{body}".encode()
    status = jobstatus.JobStatus.from_record("j", "q", record)
    assert (status.state, status.attempt, status.final) == ("failed", 2, True)
    assert status.details == {"reason": "rejected", "error": "ValueError: a|b|c",
                              "cancel": 123}
    assert jobstatus.cancel_asked(record)
    assert not jobstatus.cancel_asked(None)


def test_a_kept_result_is_json_in_the_details_and_in_the_answer() -> None:
    body = jobstatus.record_body(jobstatus.SUCCEEDED, 1, 5, {"result": '{"total": 3}'})
    status = jobstatus.JobStatus.from_record("j", "q", f"{jobstatus.FINAL_RANK}||{body}".encode())
    assert status.result == {"total": 3}
    assert status.to_json()["result"] == {"total": 3}


def _record(state: str, attempt: int, generation: int) -> bytes:
    rank = jobstatus.rank(state, attempt, generation)
    return f"{rank}||{jobstatus.record_body(state, attempt, 5, {})}".encode()


def test_only_a_success_of_the_jobs_generation_or_a_later_one_marks_it_done() -> None:
    succeeded = _record(jobstatus.SUCCEEDED, 2, 1)
    assert jobstatus.succeeded_in(succeeded, 1)
    assert jobstatus.succeeded_in(succeeded, 0)  # a copy from before the replay
    assert not jobstatus.succeeded_in(succeeded, 2)  # replayed again since
    for state in (jobstatus.FAILED, jobstatus.CANCELLED, jobstatus.RUNNING,
                  jobstatus.IN_KAFKA):
        assert not jobstatus.succeeded_in(_record(state, 1, 0), 0), state
    assert not jobstatus.succeeded_in(None, 0)

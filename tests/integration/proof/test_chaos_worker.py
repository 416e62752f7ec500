"""kill -9 of workers, and a worker frozen past its session timeout."""

from __future__ import annotations

import os
import signal
import time

import pytest

from jobpipe.connections import CLASSIC_SESSION_TIMEOUT_MS
from tests.integration.proof.harness import Figures, run_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SESSION_TIMEOUT_S = CLASSIC_SESSION_TIMEOUT_MS / 1000  # the workers' default


@pytest.mark.parametrize(("jobs", "kills"), [
    pytest.param(10_000, 3, id="default"),
    pytest.param(100_000, 12, id="full", marks=pytest.mark.slow),
])
def test_workers_killed_every_few_seconds_lose_nothing(make_pipeline, calm_stack, jobs, kills):
    p = make_pipeline(calm_stack)
    p.start_bridge()
    workers = [p.start_worker(), p.start_worker()]
    producer, result = run_in_thread(lambda: p.produce(jobs, rate_per_s=jobs / (kills * 3)))
    for i in range(kills):
        time.sleep(3)  # the fault schedule: one kill every few seconds
        victim = i % len(workers)
        p.kill(workers[victim])
        workers[victim] = p.start_worker()
    producer.join()
    assert "error" not in result, result
    report = p.wait_all_done(timeout_s=120 + jobs / 300)
    print(Figures("worker kill -9", report, {
        "kills": kills, "skipped_by_survivors": p.skipped_duplicates(),
        "processed_by_survivors": p.worker_metric("jobpipe_jobs_processed_total")}).line())
    assert report.lost == 0, report.lost_ids
    assert report.unexpected == 0, report.unexpected_ids


def test_worker_frozen_past_session_timeout_is_replaced(make_pipeline, calm_stack):
    jobs = 5_000
    p = make_pipeline(calm_stack)
    p.start_bridge()
    frozen = p.start_worker()
    p.start_worker()
    producer, result = run_in_thread(lambda: p.produce(jobs, rate_per_s=jobs / 12))
    p.wait_for(lambda: p.report().executed > jobs // 10, 60, "the first jobs to run")
    os.kill(frozen.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    # The other worker takes the frozen one's partitions once its session lapses:
    # progress resumes while it is still frozen.
    before = p.report().executed
    p.wait_for(lambda: p.report().executed > before + 100, 60,
               "progress while one worker is frozen")
    time.sleep(max(0.0, SESSION_TIMEOUT_S + 4 - (time.monotonic() - stopped_at)))
    os.kill(frozen.pid, signal.SIGCONT)
    producer.join()
    assert "error" not in result, result
    report = p.wait_all_done(timeout_s=120)
    frozen_s = round(time.monotonic() - stopped_at, 1)
    print(Figures("worker SIGSTOP", report, {"frozen_s": frozen_s,
                                             "skipped_by_workers": p.skipped_duplicates()}
                  ).line())
    assert report.lost == 0, report.lost_ids
    assert report.unexpected == 0
    assert frozen.poll() is None, "the thawed worker should rejoin, not die"

"""The broker killed and restarted, and frozen: the pipeline resumes by itself."""

from __future__ import annotations

import time

import pytest

from tests.integration.proof.harness import Figures, run_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.mark.parametrize("jobs", [pytest.param(10_000, id="default"),
                                  pytest.param(100_000, id="full", marks=pytest.mark.slow)])
def test_broker_killed_and_restarted_loses_nothing(make_stack, make_pipeline, jobs):
    p = make_pipeline(make_stack())  # a stack of its own: the fault is the broker's
    p.start_bridge()
    p.start_worker()
    producer, result = run_in_thread(lambda: p.produce(jobs, rate_per_s=jobs / 10))
    p.wait_for(lambda: p.report().executed > jobs // 10, 60, "the first jobs to run")
    p.stack.kill_kafka()
    time.sleep(3)  # the fault: the broker stays down while producers keep going
    p.stack.start_kafka()
    producer.join()
    assert "error" not in result, result
    report = p.wait_all_done(timeout_s=180)
    print(Figures("broker kill -9 + restart", report).line())
    assert report.lost == 0, report.lost_ids
    assert report.unexpected == 0
    # Resumed means caught up too: Redis empty, every offset committed.
    p.wait_for(p.settled, 60, "Redis to empty and the workers' commits to catch up")


@pytest.mark.parametrize(("jobs", "frozen_s"), [
    pytest.param(10_000, 30.0, id="default"),
    pytest.param(100_000, 30.0, id="full", marks=pytest.mark.slow),
])
def test_broker_unreachable_then_back_loses_nothing(make_stack, make_pipeline, jobs, frozen_s):
    p = make_pipeline(make_stack())  # a stack of its own: the fault is the broker's
    p.start_bridge()
    p.start_worker()
    producer, result = run_in_thread(lambda: p.produce(jobs, rate_per_s=jobs / (frozen_s + 5)))
    p.wait_for(lambda: p.report().executed > jobs // 20, 60, "the first jobs to run")
    p.stack.freeze_kafka()
    time.sleep(frozen_s)  # the fault: SIGSTOP, sockets open but no answers
    p.stack.thaw_kafka()
    thawed = time.monotonic()
    producer.join()
    assert "error" not in result, result
    report = p.wait_all_done(timeout_s=180)
    resumed_s = round(time.monotonic() - thawed, 1)
    print(Figures("broker SIGSTOP", report, {"frozen_s": frozen_s,
                                             "drained_after_thaw_s": resumed_s}).line())
    assert report.lost == 0, report.lost_ids
    assert report.unexpected == 0
    p.wait_for(p.settled, 60, "Redis to empty and the workers' commits to catch up")

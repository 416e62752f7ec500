"""kill -9 of the bridge at random moments: nothing accepted is lost."""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.proof.harness import Figures, run_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.mark.parametrize(("jobs", "kills"), [
    pytest.param(20_000, 3, id="default"),
    pytest.param(200_000, 10, id="full", marks=pytest.mark.slow),
])
def test_bridge_killed_at_random_loses_nothing(make_pipeline, calm_stack, jobs, kills):
    batch_size, batches_in_flight = 500, 4
    p = make_pipeline(calm_stack, bridge={"batch_size": batch_size,
                                          "max_batches_in_flight": batches_in_flight})
    p.start_worker()
    bridge = p.start_bridge()
    run_s = kills * 2.5
    producer, result = run_in_thread(lambda: p.produce(jobs, rate_per_s=jobs / run_s))
    rng = random.Random(8)
    for _ in range(kills):
        time.sleep(rng.uniform(0.5, 2.0))  # the fault schedule, not a wait for a condition
        p.kill(bridge)
        bridge = p.start_bridge()
    producer.join()
    assert "error" not in result, result
    report = p.wait_all_done(timeout_s=60 + jobs / 500)
    window = batch_size * batches_in_flight
    figures = Figures("bridge kill -9", report,
                      {"kills": kills, "duplicate_bound": kills * window,
                       "skipped_by_worker": p.skipped_duplicates()})
    print(figures.line())
    assert report.accepted == jobs
    assert report.lost == 0, report.lost_ids
    assert report.unexpected == 0, report.unexpected_ids
    # Each kill can re-send at most the batches it had in flight.
    assert report.duplicates <= kills * window

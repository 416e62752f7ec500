"""The state record against real Redis: lookup, the forward-only rule, cancel."""

from __future__ import annotations

import pytest
import redis

from jobpipe import jobstatus
from jobpipe.jobstatus import ADVANCE_LUA, Update
from jobpipe.settings import Settings
from tests.conftest import MakeSettings
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]
JOB = "01a23779-5814-7ecf-9e5d-07efb34dd69a"


@pytest.fixture
def tracked(make_settings: MakeSettings) -> Settings:
    return make_settings(queues={"plain": {}, "kept": {"track_status": True,
                                                        "keep_results": True}})


def _advance(client: redis.Redis, settings: Settings, *updates: Update) -> int:
    keys, args = jobstatus.advance_call(settings.namespace, settings.topology.get("kept"),
                                        updates)
    return int(client.eval(ADVANCE_LUA, len(keys), *keys, *args))


def test_lookup_finds_the_queue_and_a_redelivery_never_moves_a_job_back(
        redis_client: redis.Redis, tracked: Settings) -> None:
    assert jobstatus.lookup(redis_client, tracked, JOB) is None
    assert _advance(redis_client, tracked, Update(JOB, "running", 1,
                                                  {"worker": "w:1", "started_at": 5})) == 1
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert (status.queue, status.state, status.details["worker"]) == ("kept", "running", "w:1")
    done = Update(JOB, "succeeded", 1, jobstatus.result_fields(
        tracked.topology.get("kept"), {"total": 3}))
    assert _advance(redis_client, tracked, done) == 1
    # The same job delivered again: its "running" (and an older "queued") change nothing.
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {"worker": "w:2"}),
                    Update(JOB, "queued", 1, {})) == 0
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert status.state == "succeeded"
    assert status.result == {"total": 3}
    assert status.to_json()["result"] == {"total": 3}
    assert "worker" not in status.details


def test_a_retry_moves_on_to_the_next_attempt_but_not_back(
        redis_client: redis.Redis, tracked: Settings) -> None:
    _advance(redis_client, tracked, Update(JOB, "retrying", 1, {"next_at": 9}))
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {})) == 0
    assert _advance(redis_client, tracked, Update(JOB, "running", 2, {})) == 1
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert (status.state, status.attempt) == ("running", 2)


def test_a_result_over_the_cap_is_dropped_with_its_size(tracked: Settings) -> None:
    spec = tracked.topology.get("kept")
    fields = jobstatus.result_fields(spec, "x" * spec.result_max_bytes)
    assert "result" not in fields
    assert "over result_max_bytes" in str(fields["result_dropped"])
    assert jobstatus.result_fields(tracked.topology.get("plain"), 1) == {}


def test_cancel_before_start_is_final_and_a_running_job_is_only_asked(
        redis_client: redis.Redis, tracked: Settings) -> None:
    assert jobstatus.cancel(redis_client, tracked, JOB) == ("none", None)
    _advance(redis_client, tracked, Update(JOB, "queued", 1, {}))
    outcome, status = jobstatus.cancel(redis_client, tracked, JOB)
    assert outcome == "cancelled"
    assert status is not None
    assert status.state == "cancelled"
    # Cancelled is final: a late "running" from a worker that took it anyway is refused.
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {})) == 0
    assert jobstatus.cancel(redis_client, tracked, JOB)[0] == "final"

    other = "01a23779-5814-7ecf-9e5d-07efb34dd69b"
    _advance(redis_client, tracked, Update(other, "running", 1, {}))
    outcome, status = jobstatus.cancel(redis_client, tracked, other)
    assert outcome == "requested"
    assert status is not None
    assert status.state == "running"
    assert status.details["cancel"] > 0
    # The request survives the worker's next write.
    _advance(redis_client, tracked, Update(other, "cancelled", 1, {}))
    status = jobstatus.lookup(redis_client, tracked, other)
    assert status is not None
    assert status.state == "cancelled"
    assert "cancel" in status.details


def test_a_replay_starts_a_generation_that_moves_a_failed_record_on_but_never_back(
        redis_client: redis.Redis, tracked: Settings) -> None:
    # Generation 0: asked to cancel while running, then failed anyway (dead-lettered).
    _advance(redis_client, tracked, Update(JOB, "running", 1, {}))
    assert jobstatus.cancel(redis_client, tracked, JOB)[0] == "requested"
    assert _advance(redis_client, tracked, Update(JOB, "failed", 1, {"reason": "rejected"})) == 1
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {})) == 0  # re-delivery
    # Replayed: generation 1 moves the final "failed" on, without the old cancel request.
    assert _advance(redis_client, tracked, Update(JOB, "in_kafka", 1, {}, generation=1)) == 1
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert (status.state, status.attempt) == ("in_kafka", 1)
    assert "cancel" not in status.details
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {}, generation=1)) == 1
    # A late write of generation 0, even a final one, is older than anything of 1.
    assert _advance(redis_client, tracked, Update(JOB, "succeeded", 1, {})) == 0
    assert _advance(redis_client, tracked, Update(JOB, "succeeded", 1, {}, generation=1)) == 1
    # Within generation 1 the rule holds: a re-delivery never moves "succeeded" back.
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {}, generation=1)) == 0
    assert _advance(redis_client, tracked, Update(JOB, "failed", 2, {}, generation=1)) == 0
    assert jobstatus.cancel(redis_client, tracked, JOB)[0] == "final"
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert status.state == "succeeded"


def test_cancel_within_a_later_generation_is_final_for_that_generation(
        redis_client: redis.Redis, tracked: Settings) -> None:
    _advance(redis_client, tracked, Update(JOB, "failed", 1, {}))
    _advance(redis_client, tracked, Update(JOB, "in_kafka", 1, {}, generation=3))
    outcome, status = jobstatus.cancel(redis_client, tracked, JOB)
    assert outcome == "cancelled"
    assert status is not None
    assert status.state == "cancelled"
    assert _advance(redis_client, tracked, Update(JOB, "running", 1, {}, generation=3)) == 0
    assert jobstatus.cancel(redis_client, tracked, JOB)[0] == "final"


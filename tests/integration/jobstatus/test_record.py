"""The state record against real Redis: lookup, the forward-only rule, cancel."""

from __future__ import annotations

import pytest
import redis

from consumers.states import JobStates
from ingest import Producer
from ingest.intake import MULTI_MIN_JOBS
from ingest.plan import PlanBuilder, QueueLayout
from ingest.scripts import PUSH_LUA
from jobpipe import jobstatus, names
from jobpipe.connections import async_redis_client
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
    calls = jobstatus.advance_calls(settings.namespace, settings.topology.get("kept"), updates)
    return sum(int(client.eval(ADVANCE_LUA, len(keys), *keys, *args)) for keys, args in calls)


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
    # Replayed: generation 1 moves the final "failed" on, without the old cancel
    # request, and restarts the TTL.
    key = names.job_states_key(tracked.namespace, "kept", JOB)
    redis_client.expire(key, 1000)  # to tell a restarted TTL from a kept one
    assert _advance(redis_client, tracked, Update(JOB, "in_kafka", 1, {}, generation=1)) == 1
    assert 1000 < redis_client.ttl(key) <= jobstatus.record_ttl_s(tracked.topology.get("kept"))
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

def test_a_push_starts_a_record_but_never_overwrites_one_and_each_write_keeps_the_hash(
        redis_client: redis.Redis, tracked: Settings) -> None:
    spec = tracked.topology.get("kept")
    ttl_s = jobstatus.record_ttl_s(spec)
    key = names.job_states_key(tracked.namespace, "kept", JOB)

    def push(job_id: str, again: bool = False) -> None:  # what an enqueue of ``job_id`` sends
        builder = PlanBuilder(QueueLayout.of(tracked.namespace, spec), None)
        builder.push(names.ready_key(tracked.namespace, "kept", 0), [b"job"])
        builder.track([job_id], jobstatus.new_record(jobstatus.QUEUED, 1, {}))
        plan = builder.build([job_id])
        if again:  # a retry after a lost reply, or the spool
            plan.may_have_run()
        redis_client.eval(PUSH_LUA, len(plan.keys), *plan.keys, *plan.args)

    push(JOB)
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert status.state == "queued"
    assert ttl_s - 60 < redis_client.ttl(key) <= ttl_s
    # Every write restarts the hash's TTL: each record in it lives at least
    # ttl_s after its own last change.
    redis_client.expire(key, 1000)
    assert _advance(redis_client, tracked, Update(JOB, "in_kafka", 1, {})) == 1
    assert 1000 < redis_client.ttl(key) <= ttl_s
    assert _advance(redis_client, tracked, Update(JOB, "succeeded", 1, jobstatus.result_fields(
        spec, [1]))) == 1
    redis_client.expire(key, 1000)
    push(JOB, again=True)  # the call sent again (its reply was lost) leaves the record
    status = jobstatus.lookup(redis_client, tracked, JOB)
    assert status is not None
    assert (status.state, status.result) == ("succeeded", [1])
    assert redis_client.ttl(key) <= 1000  # and writes nothing


def test_one_call_moves_jobs_of_different_states_each_by_its_own_rank(
        redis_client: redis.Redis, tracked: Settings) -> None:
    later = "01a2377a-5814-7ecf-9e5d-07efb34dd69a"  # 65 s later: another state hash
    ids = [f"{JOB[:-1]}{n}" for n in range(3)] + [later]
    assert names.job_states_key("n", "q", later) != names.job_states_key("n", "q", JOB)
    _advance(redis_client, tracked, Update(ids[0], "succeeded", 1, {}),
             Update(ids[1], "queued", 1, {}))
    # Grouped by state in one call: in_kafka for all four, running for two.
    moved = _advance(redis_client, tracked, *(Update(i, "in_kafka", 1, {}) for i in ids),
                     Update(ids[2], "running", 1, {"worker": "w:1", "started_at": 5}),
                     Update(ids[3], "retrying", 1, {"next_at": 9, "error": "E: x|y"}))
    assert moved == 5  # every in_kafka but the succeeded one's, then both later states
    states = [jobstatus.lookup(redis_client, tracked, i) for i in ids]
    assert [(s.state, s.details) for s in states if s is not None] == [
        ("succeeded", {}), ("in_kafka", {}),
        ("running", {"worker": "w:1", "started_at": 5}),
        ("retrying", {"next_at": 9, "error": "E: x|y"})]
    # One job named twice in a call (a flush holding its end and, late, its
    # start): the higher rank wins, whatever the order.
    assert _advance(redis_client, tracked, Update(ids[2], "succeeded", 1, {}),
                    Update(ids[2], "running", 1, {})) == 1
    status = jobstatus.lookup(redis_client, tracked, ids[2])
    assert status is not None
    assert status.state == "succeeded"


def test_a_big_enqueue_starts_every_record_too(redis_client: redis.Redis,
                                               tracked: Settings) -> None:
    # MULTI_MIN_JOBS or more plain jobs go as MULTI/LPUSH/EXEC (not on a cluster).
    with Producer(tracked) as producer:
        ids = producer.enqueue_many("kept", "t", [{}] * MULTI_MIN_JOBS)
    pipe = redis_client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(names.job_states_key(tracked.namespace, "kept", job_id), job_id)
    records = pipe.execute()
    assert None not in records
    assert not any(jobstatus.cancel_asked(r) for r in records)
    hashes = {names.job_states_key(tracked.namespace, "kept", i) for i in ids}
    assert all(redis_client.ttl(k) > 0 for k in hashes)
    status = jobstatus.lookup(redis_client, tracked, ids[-1])
    assert status is not None
    assert (status.state, status.attempt) == ("queued", 1)


async def test_the_worker_reads_a_batch_s_records_in_order_across_state_hashes(
        redis_client: redis.Redis, tracked: Settings) -> None:
    later = "01a2377a" + JOB[8:]  # made ~1 s after JOB: a hash of its own
    ids = [JOB, JOB[:-1] + "b", later, JOB[:-1] + "c"]
    assert names.job_states_key(tracked.namespace, "kept", later) \
        != names.job_states_key(tracked.namespace, "kept", JOB)
    _advance(redis_client, tracked, Update(JOB, "in_kafka", 1, {}),
             Update(later, "running", 1, {}), Update(ids[3], "succeeded", 1, {}))
    client = async_redis_client(tracked.redis)
    try:
        states = JobStates(client, tracked.namespace, [tracked.topology.get("kept")])
        records = await states.records("kept", ids)
    finally:
        await client.aclose()  # type: ignore[attr-defined]
    assert [r and r.split(b"|")[2] for r in records] == [b"in_kafka", None, b"running",
                                                         b"succeeded"]


async def _worker_sees_cancel(settings: Settings, *job_ids: str) -> list[bool]:
    """What a worker's admission check answers for ``job_ids`` of queue ``kept``."""
    client = async_redis_client(settings.redis)
    try:
        states = JobStates(client, settings.namespace, [settings.topology.get("kept")])
        return await states.cancel_requested("kept", list(job_ids))
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def test_the_worker_finds_cancel_requests_through_the_queue_set_and_the_record_decides(
        redis_client: redis.Redis, tracked: Settings) -> None:
    spec = tracked.topology.get("kept")
    waiting, running, untouched = JOB, JOB[:-1] + "b", JOB[:-1] + "c"
    for job_id in (waiting, running, untouched):
        _advance(redis_client, tracked, Update(job_id, "in_kafka", 1, {}))
    assert await _worker_sees_cancel(tracked, waiting, running, untouched) == [False] * 3
    _advance(redis_client, tracked, Update(running, "running", 1, {}))
    assert jobstatus.cancel(redis_client, tracked, waiting)[0] == "cancelled"
    assert jobstatus.cancel(redis_client, tracked, running)[0] == "requested"
    assert await _worker_sees_cancel(tracked, waiting, untouched, running) == [True, False, True]
    # The set outlives every record holding a request: a later request (or a TTL
    # already longer) never shortens it.
    cancels = names.cancel_requests_key(tracked.namespace, "kept")
    assert redis_client.smembers(cancels) == {waiting.encode(), running.encode()}
    ttl_s = jobstatus.record_ttl_s(spec)
    assert ttl_s - 60 <= redis_client.ttl(cancels) <= ttl_s
    redis_client.expire(cancels, ttl_s * 2)
    _advance(redis_client, tracked, Update(untouched, "running", 1, {}))
    assert jobstatus.cancel(redis_client, tracked, untouched)[0] == "requested"
    assert redis_client.ttl(cancels) > ttl_s
    # A replay starts a generation without the earlier request: the id stays in
    # the set, but its record says no, so the replayed job runs.
    _advance(redis_client, tracked, Update(running, "failed", 1, {}))
    _advance(redis_client, tracked, Update(running, "in_kafka", 1, {}, generation=1))
    assert await _worker_sees_cancel(tracked, running, waiting) == [False, True]
    # A request of a job already over changes nothing, nor joins the set.
    finished = JOB[:-1] + "d"
    _advance(redis_client, tracked, Update(finished, "succeeded", 1, {}))
    assert jobstatus.cancel(redis_client, tracked, finished)[0] == "final"
    assert not redis_client.sismember(cancels, finished)

"""Plans of a queue with ``shard_slots``: one script call per hash slot, each
naming keys of its slot only, in the order the producer sends them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.crc import key_slot

from ingest.intake import Intake, JobRequest
from jobpipe import names
from jobpipe.errors import ConfigError
from jobpipe.options import JobOptions
from jobpipe.settings import load_settings
from jobpipe.topology import QueueSpec, shard_for


@pytest.fixture
def intake():
    settings = load_settings(None, environ={}, overrides={"namespace": "ns", "queues": {
        "hot": {"shards": 6, "shard_slots": True, "priorities": [3, 1]},
        "tracked": {"shards": 3, "shard_slots": True, "track_status": True},
    }})
    return Intake(settings)


def _one_slot(keys: list[str]) -> int:
    slots = {key_slot(key.encode()) for key in keys}
    assert len(slots) == 1, keys
    return slots.pop()


def test_an_unkeyed_batch_is_one_call_per_shard_each_on_its_own_slot(intake):
    plan = intake.plan_many("hot", "t", list(range(12)), JobOptions(priority=1))
    assert plan.keys == []
    assert len(plan.parts) == 6
    slots = [_one_slot(part.keys) for part in plan.parts]
    assert len(set(slots)) == 6
    for shard, part in enumerate(plan.parts):
        assert names.ready_key("ns", "hot", shard, 1, own_slot=True) in part.keys
        assert names.wake_key("ns", "hot", shard) in part.keys  # the push wakes its shard
        assert len(part.ids) == 2
    assert sorted(i for part in plan.parts for i in part.ids) == sorted(plan.ids)
    # The high-water mark counts every ready list, outside any part.
    assert len(plan.backlog_lists) == 12
    assert all(part.args[0] == 0 for part in plan.parts)  # no part checks a mark


def test_a_keyed_batch_is_one_call_on_its_keys_shard_in_order(intake):
    plan = intake.plan_many("hot", "t", [1, 2, 3], JobOptions(key="user-7"))
    shard = shard_for(b"user-7", 6, 0)
    [part] = plan.parts
    assert _one_slot(part.keys) == key_slot(f"{{hot.s{shard}}}".encode())
    jobs = [orjson.loads(a) for a in part.args if isinstance(a, bytes)]
    assert [j["args"] for j in jobs] == [1, 2, 3]


def test_delayed_and_unique_jobs_stay_in_their_shards_slot(intake):
    later = datetime.now(UTC) + timedelta(hours=1)
    plan = intake.plan_jobs("hot", [
        JobRequest("t", 1, JobOptions(run_at=later)),
        JobRequest("t", 2, JobOptions(idempotency_key="order-9", unique_for_s=60)),
    ])
    for part in plan.parts:
        _one_slot(part.keys)
    unique_shard = shard_for(b"order-9", 6, 0)  # unkeyed: the idempotency key's shard
    unique_part = next(p for p in plan.parts
                       if names.unique_key("ns", "hot", "order-9", unique_shard) in p.keys)
    assert plan.unique_jobs == [1]
    assert unique_part.unique_jobs == [1]
    assert any(names.delayed_key("ns", "hot", p_slot) in part.keys
               for part in plan.parts for p_slot in range(6))


def test_state_records_go_first_in_a_call_on_the_queues_own_slot(intake):
    plan = intake.plan_many("tracked", "t", list(range(6)), JobOptions())
    records, *shards = plan.parts
    # Records only (no wake), in the state hash of the call's ids, on the queue's tag.
    assert records.keys == [names.job_states_key("ns", "tracked", plan.ids[0])]
    assert "S" in records.args
    assert "W" not in records.args
    assert len(shards) == 3
    assert all(names.wake_key("ns", "tracked", s) in part.keys for s, part in enumerate(shards))


def test_a_plan_left_half_sent_spools_only_what_is_left(intake):
    plan = intake.plan_many("hot", "t", list(range(12)), JobOptions())
    plan.sent = 4
    assert plan.calls() == plan.parts[4:]


def test_a_fair_queue_cannot_have_shard_slots():
    with pytest.raises(ConfigError, match="shard_slots"):
        QueueSpec("f", fair=True, shard_slots=True)

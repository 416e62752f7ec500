"""A queue with ``shard_slots``: every producer feature (keys, spreading, delayed
jobs, unique windows, state records, the high-water mark), the bridge's dead
lists and the pause of a tenant, on a single Redis and on a Redis Cluster, where
each call touches one shard's slot."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bridge import Bridge, count_dead, requeue_dead
from consumers.control import Controls, pause_tenant, resume_tenant
from ingest import Producer
from jobpipe import jobstatus, names
from jobpipe.admin import apply_topics
from jobpipe.connections import async_redis_client
from jobpipe.errors import QueueFull
from tests.integration.bridge.jobs import consume, id_counts
from tests.integration.bridge.procs import inflight_total, ready_total
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]
QUEUES = {"hot": {"partitions": 3, "shards": 4, "shard_slots": True, "track_status": True}}


def test_every_kind_of_job_reaches_kafka_once(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues=QUEUES)
    ns = settings.namespace
    apply_topics(settings)
    with Producer(settings) as producer:
        plain = producer.enqueue_many("hot", "t", list(range(100)))
        keyed = producer.enqueue_many("hot", "t", list(range(20)), key="user-7")
        delayed = [producer.enqueue("hot", "t", i, delay_s=0.3) for i in range(10)]
        unique = producer.enqueue("hot", "t", 0, idempotency_key="order-9", unique_for_s=60)
        again = producer.enqueue("hot", "t", 1, idempotency_key="order-9", unique_for_s=60)
        assert again == unique  # one window per idempotency key, across the shards
        assert producer.status(plain[0]) is not None  # its record was written
    ids = {*plain, *keyed, *delayed, unique}
    assert sum(int(redis_client.zcard(names.delayed_key(ns, "hot", s))) for s in range(4)) == 10
    bridge = Bridge(settings, bridge_id="slots")
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        messages = consume(settings, [names.main_topic(ns, "hot")], expect=len(ids),
                           timeout_s=60)
    finally:
        bridge.stop()
        thread.join(60)
    counts = id_counts(messages)
    assert set(counts) == ids
    assert max(counts.values()) == 1
    order = [m["args"] for m in sorted(messages, key=lambda m: (m["_partition"], m["_offset"]))
             if m["key"] == "user-7"]
    assert order == list(range(20))
    status = jobstatus.lookup(redis_client, settings, keyed[0])
    assert status is not None
    assert status.state == jobstatus.IN_KAFKA


def test_the_high_water_mark_counts_every_shard(make_settings, redis_client):
    queues = {"hot": {"shards": 4, "shard_slots": True, "max_backlog": 10}}
    settings = make_settings(queues=queues, ingest={"on_full": "raise"})
    with Producer(settings) as producer:
        producer.enqueue_many("hot", "t", list(range(10)))  # 0 waiting: accepted
        with pytest.raises(QueueFull, match="10 jobs waiting"):
            producer.enqueue("hot", "t", 0)
    assert ready_total(redis_client, settings, "hot") == 10


def test_dead_jobs_wait_in_their_shards_dead_list_and_go_back(make_settings, redis_client):
    # No topic: every produce fails for good, so every job is dead-listed.
    settings = make_settings(queues={"ghost": {"shards": 4, "shard_slots": True}},
                             kafka={"producer": {"topic.metadata.propagation.max.ms": "1500"}})
    with Producer(settings) as producer:
        producer.enqueue_many("ghost", "t", list(range(8)))
    bridge = Bridge(settings, bridge_id="dead")
    assert bridge.run_until_idle(60)
    assert count_dead(redis_client, settings, "ghost") == 8
    assert inflight_total(redis_client, settings, "ghost") == 0
    assert requeue_dead(redis_client, settings, "ghost") == 8
    assert ready_total(redis_client, settings, "ghost") == 8
    assert count_dead(redis_client, settings, "ghost") == 0


def test_a_paused_tenants_jobs_are_parked_and_come_back(make_settings, redis_client):
    settings = make_settings(queues={"hot": {"shards": 4, "shard_slots": True}})
    ns = settings.namespace
    spec = settings.topology.get("hot")
    pause_tenant(redis_client, ns, "hot", "acme")
    raws = [f'{{"key":"k{i}","id":"{i}","tenant":"acme"}}'.encode() for i in range(6)]

    async def park_all() -> list[bool]:
        client = async_redis_client(settings.redis)
        controls = Controls(client, ns, [spec])
        try:
            return [await controls.park(raw, "hot", "acme") for raw in raws]
        finally:
            await client.aclose()

    assert asyncio.run(park_all()) == [True] * 6
    assert ready_total(redis_client, settings, "hot") == 0
    assert resume_tenant(redis_client, ns, spec, "acme") == 6
    assert ready_total(redis_client, settings, "hot") == 6
    assert redis_client.llen(names.parked_key(ns, "hot", "acme")) == 0
    assert asyncio.run(park_all()) == [False] * 6  # resumed: straight to the ready lists
    assert ready_total(redis_client, settings, "hot") == 12

"""Delayed jobs are promoted when due, once, to the producer's shard or tenant list."""

from __future__ import annotations

import threading
import time

import pytest

from bridge import Bridge
from bridge.delayed import Promoter
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.envelope import encode
from tests.integration.bridge.jobs import consume, id_counts, make_job
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]


def test_delayed_jobs_reach_kafka_when_due_and_lateness_is_measured(
        make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"q": {"partitions": 3}})
    apply_topics(settings)
    ns = settings.namespace
    start_ms = int(time.time() * 1000) + 500
    run_at: dict[str, int] = {}
    members = {}
    for i in range(1000):  # due over 2 s, starting in 0.5 s
        due_ms = start_ms + (i * 2)
        job = make_job("q", run_at_ns=due_ms * 1_000_000)
        run_at[job.id] = due_ms
        members[encode(job)] = due_ms
    redis_client.zadd(names.delayed_key(ns, "q"), members)
    bridge = Bridge(settings, bridge_id="delay")
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        messages = consume(settings, [names.main_topic(ns, "q")], expect=len(run_at),
                           timeout_s=60)
    finally:
        bridge.stop()
        thread.join(60)
    counts = id_counts(messages)
    assert set(counts) == set(run_at)
    assert max(counts.values()) == 1
    lateness = sorted(m["_ts_ms"] - run_at[m["id"]] for m in messages)
    p50, p99 = lateness[len(lateness) // 2], lateness[int(len(lateness) * 0.99) - 1]
    print(f"\ndelayed promotion lateness (Kafka timestamp - run_at), 1000 jobs: "
          f"min {lateness[0]} ms, p50 {p50} ms, p99 {p99} ms, max {lateness[-1]} ms")
    assert lateness[0] >= 0  # never early
    # How late is a speed figure, not a test verdict: `jobpipe bench bridge` reports it.


def test_promotion_goes_where_a_producer_would_put_the_job(make_settings, redis_client):
    settings = make_settings(queues={"plain": {"shards": 4, "priorities": [2, 1]},
                                     "fair": {"fair": True}})
    ns = settings.namespace
    keyed = make_job("plain", key="user-7", priority=1)
    tenant_job = make_job("fair", tenant="acme")
    no_tenant = make_job("fair")
    for job in (keyed, tenant_job, no_tenant):
        redis_client.zadd(names.delayed_key(ns, job.queue), {encode(job): 1})
    promoter = Promoter(redis_client, ns, settings.topology.select(None))
    other = Promoter(redis_client, ns, settings.topology.select(None))
    moved = promoter.promote()
    assert {q: p.moved for q, p in moved.items()} == {"plain": 1, "fair": 2}
    assert other.promote() == {}  # a second bridge finds nothing left to move
    from jobpipe.topology import shard_for

    shard = shard_for(b"user-7", 4, 0)
    assert redis_client.lrange(names.ready_key(ns, "plain", shard, 1), 0, -1) == [encode(keyed)]
    assert redis_client.lrange(names.tenant_ready_key(ns, "fair", "acme"), 0, -1) == \
        [encode(tenant_job)]
    assert redis_client.llen(names.tenant_ready_key(ns, "fair", "default")) == 1
    assert redis_client.smembers(names.tenants_key(ns, "fair")) == {b"acme", b"default"}

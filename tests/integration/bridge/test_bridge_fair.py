"""Fair queues: a newcomer tenant is not stuck behind a huge backlog, in Redis or in Kafka."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from confluent_kafka import Consumer

from bridge import Bridge
from jobpipe import names
from jobpipe.admin import apply_topics
from tests.integration.bridge.jobs import make_job, push
from tests.integration.bridge.procs import wait_for
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]
BATCH = 100
MAX_LAG = 2000


def _fair_case(make_settings, redis_client, a_jobs: int) -> None:
    settings = make_settings(
        queues={"f": {"partitions": 1, "fair": True, "max_kafka_lag": MAX_LAG}},
        bridge={"batch_size": BATCH, "max_batches_in_flight": 4})
    apply_topics(settings)
    ns = settings.namespace
    push(redis_client, settings, (make_job("f", tenant="A") for _ in range(a_jobs)))
    bridge = Bridge(settings, bridge_id="fair")
    thread = threading.Thread(target=bridge.run)
    thread.start()
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                         "broker.address.family": "v4", "group.id": names.group_id(ns, "workers"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                         "auto.commit.interval.ms": 100})
    try:
        # A fills Kafka up to the lag bound, then the bridge holds the rest in Redis.
        wait_for(lambda: bridge.acked_jobs.get("f", 0) >= MAX_LAG, 60, what="lag bound")
        time.sleep(0.5)
        held = bridge.acked_jobs["f"]
        assert held <= MAX_LAG + BATCH
        b_ids = set(push(redis_client, settings, (make_job("f", tenant="B") for _ in range(100))))
        # workers start consuming: the bridge feeds again, B first-come within a round
        consumer.subscribe([names.main_topic(ns, "f")])
        order: list[str] = []
        seen_b = 0
        deadline = time.monotonic() + 60
        while seen_b < len(b_ids) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    continue
                job = orjson.loads(msg.value())
                order.append(job["tenant"])
                seen_b += job["id"] in b_ids
    finally:
        consumer.close()
        bridge.stop()
        thread.join(60)
    assert seen_b == len(b_ids)
    last_b = max(i for i, t in enumerate(order) if t == "B")
    a_before_last_b = order[:last_b].count("A")
    bound = MAX_LAG + 2 * BATCH
    print(f"\nfairness: {a_jobs} A jobs waiting, A in Kafka when B arrived: {held}; "
          f"A jobs ahead of B's last: {a_before_last_b} (bound {bound} = max_kafka_lag "
          f"+ 2 batches)")
    assert a_before_last_b <= bound


def test_newcomer_tenant_reaches_kafka_within_two_batches_past_the_lag_bound(
        make_settings, redis_client, kafka_cleanup):
    _fair_case(make_settings, redis_client, 20_000)


@pytest.mark.slow
def test_newcomer_tenant_behind_100k_jobs(make_settings, redis_client, kafka_cleanup):
    _fair_case(make_settings, redis_client, 100_000)


def test_paused_tenant_is_skipped(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"f": {"partitions": 1, "fair": True}},
                             bridge={"batch_size": BATCH})
    apply_topics(settings)
    ns = settings.namespace
    push(redis_client, settings, (make_job("f", tenant=t) for t in ("A", "P") for _ in range(300)))
    redis_client.sadd(names.paused_tenants_key(ns, "f"), "P")
    bridge = Bridge(settings, bridge_id="fair")
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        wait_for(lambda: redis_client.llen(names.tenant_ready_key(ns, "f", "A")) == 0, 30)
        wait_for(lambda: bridge.acked_jobs.get("f", 0) == 300, 30)
        assert redis_client.llen(names.tenant_ready_key(ns, "f", "P")) == 300
        redis_client.srem(names.paused_tenants_key(ns, "f"), "P")
        wait_for(lambda: bridge.acked_jobs.get("f", 0) == 600, 30, what="resumed tenant")
    finally:
        bridge.stop()
        thread.join(60)
    # an emptied tenant leaves the registry
    assert redis_client.smembers(names.tenants_key(ns, "f")) == set()

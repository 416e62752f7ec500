"""Dead bridges' in-flight jobs come back; a bridge presumed dead is fenced; two at once."""

from __future__ import annotations

import threading

import pytest

from bridge import Bridge
from bridge.batch import Source
from bridge.reaper import Reaper
from bridge.take import Taker
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import redis_client as make_client
from tests.integration.bridge.jobs import consume, fill, id_counts
from tests.integration.bridge.procs import inflight_total, ready_total, wait_for
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]
FAST = {"heartbeat_interval_s": 0.2, "heartbeat_timeout_s": 1.0, "batch_size": 200}


def _abandoned_takes(settings, client, queue: str, batches: int) -> str:
    """A bridge that takes ``batches`` batches and dies without a word."""
    ns = settings.namespace
    ghost = "ghost.0001"
    Reaper(client, ns, [(queue, None)], ghost, timeout_s=1.0).register()
    taker = Taker(client, ghost, ns)
    spec = settings.topology.get(queue)
    for shard in range(spec.shards):
        key = names.ready_key(ns, queue, shard, 0)
        source = Source(queue, key, names.inflight_list_key(ghost, key),
                        names.main_topic(ns, queue))
        for _ in range(batches):
            taker.take_lists([source], 100)
    return ghost


def test_live_bridge_returns_a_dead_bridges_inflight_after_the_timeout(
        make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"q": {"partitions": 3, "shards": 2}}, bridge=FAST)
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", 3000)
    _abandoned_takes(settings, redis_client, "q", batches=3)
    stranded = inflight_total(redis_client, settings, "q")
    assert stranded == 2 * 3 * 100
    bridge = Bridge(settings, bridge_id="rescuer")
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        wait_for(lambda: inflight_total(redis_client, settings, "q") == 0
                 and ready_total(redis_client, settings, "q") == 0, 30, what="recovery")
        counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                                   expect=len(ids)))
    finally:
        bridge.stop()
        thread.join(60)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1  # the ghost never produced: no duplicates
    live = redis_client.zrange(names.bridges_key(settings.namespace), 0, -1)
    assert live == []


def test_a_bridge_presumed_dead_is_fenced_and_carries_on(make_settings, redis_client,
                                                         kafka_cleanup):
    settings = make_settings(queues={"q": {"partitions": 3, "shards": 2}},
                             bridge={**FAST, "heartbeat_interval_s": 0.05,
                                     "max_batches_in_flight": 4})
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", 20_000)
    bridge = Bridge(settings, bridge_id="victim")
    thread = threading.Thread(target=bridge.run_until_idle, args=(120,))
    fenced = []
    thread.start()
    other = make_client(settings.redis)
    key = names.bridges_key(settings.namespace)
    try:
        for _ in range(3):  # what a reaper does when it believes the bridge died
            current = wait_for(lambda: [m for m in other.zrange(key, 0, -1)
                                        if m.decode() not in fenced], 30)
            fenced.append(current[0].decode())
            other.zrem(key, current[0])
            wait_for(lambda: bridge.bridge_id not in fenced, 30, what="reincarnation")
    finally:
        thread.join(180)
        other.close()
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                               expect=len(ids)))
    assert set(counts) == set(ids)
    assert inflight_total(redis_client, settings, "q") == 0
    print(f"\nfenced 3 times: {sum(c - 1 for c in counts.values())} duplicates")


def test_two_bridges_on_one_queue_deliver_each_job_exactly_once(make_settings, redis_client,
                                                                kafka_cleanup):
    settings = make_settings(queues={"q": {"partitions": 3, "shards": 4}},
                             bridge={"batch_size": 250})
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", 20_000)
    bridges = [Bridge(settings, bridge_id=f"twin{i}") for i in range(2)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda b=b: results.append(b.run_until_idle(120)))
               for b in bridges]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert results == [True, True]
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                               expect=len(ids)))
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    shares = [sum(b.acked_jobs.values()) for b in bridges]
    assert sum(shares) == len(ids)
    print(f"\ntwo bridges: shares {shares}")

"""Every job reaches Kafka exactly once, with its key; acks follow delivery."""

from __future__ import annotations

import pytest

from bridge import Bridge
from jobpipe import names
from jobpipe.admin import apply_topics
from tests.integration.bridge.jobs import consume, fill, id_counts, make_job, push
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]


def _inflight_keys(client, ns: str, queue: str) -> list[bytes]:
    return list(client.scan_iter(match=names.inflight_pattern(ns, queue), count=1000))


def test_every_job_reaches_kafka_exactly_once(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"q": {"partitions": 3, "shards": 4,
                                           "priorities": [3, 1]}})
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", 5000)
    ids += push(redis_client, settings, [make_job("q", priority=1) for _ in range(500)])
    keyed = push(redis_client, settings, [make_job("q", key=f"k{i % 7}") for i in range(300)])
    ids += keyed
    bridge = Bridge(settings)
    assert bridge.run_until_idle(60)
    ns = settings.namespace
    messages = consume(settings, [names.main_topic(ns, "q", 0), names.main_topic(ns, "q", 1)],
                       expect=len(ids))
    counts = id_counts(messages)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    by_id = {m["id"]: m for m in messages}
    for m in messages:
        if m["key"] is not None:
            assert m["_key"] == m["key"].encode()
    # one partition per key, in enqueue order
    for k in {by_id[i]["key"] for i in keyed}:
        mine = [by_id[i] for i in keyed if by_id[i]["key"] == k]
        assert len({m["_partition"] for m in mine}) == 1
        assert [m["_offset"] for m in mine] == sorted(m["_offset"] for m in mine)
    assert _inflight_keys(redis_client, ns, "q") == []
    assert bridge.acked_jobs == {"q": len(ids)}

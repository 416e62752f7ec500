"""Wiping a namespace removes its keys and topics, and nothing of a neighbour's."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis
from confluent_kafka.admin import AdminClient

from jobpipe import names
from jobpipe.admin import apply_topics, desired_topics
from jobpipe.connections import kafka_admin_config
from jobpipe.settings import Settings
from jobpipe.wipe import delete_keys, delete_topics

pytestmark = pytest.mark.integration


def test_wipe_deletes_only_the_namespace(settings: Settings, redis_client: redis.Redis,
                                         kafka_cleanup: None) -> None:
    ns = settings.namespace
    neighbour = replace(settings, namespace=f"{ns}x")  # shares the prefix, not the namespace
    apply_topics(settings)
    apply_topics(neighbour)
    for i in range(2500):  # more than one UNLINK chunk
        redis_client.set(names.done_key(ns, "default", str(i)), b"1")
    redis_client.lpush(names.ready_key(ns, "default", 0), b"job")
    kept = names.ready_key(neighbour.namespace, "default", 0)
    redis_client.lpush(kept, b"job")
    try:
        assert delete_keys(redis_client, ns) == 2501
        assert set(delete_topics(settings.kafka, ns)) == set(desired_topics(settings))
        assert list(redis_client.scan_iter(match=names.namespace_pattern(ns))) == []
        assert redis_client.llen(kept) == 1
        admin = AdminClient(kafka_admin_config(settings.kafka))
        left = set(admin.list_topics(timeout=10).topics)
        assert not any(t.startswith(f"{ns}.") for t in left)
        assert names.main_topic(neighbour.namespace, "default") in left
    finally:
        delete_keys(redis_client, neighbour.namespace)
        delete_topics(neighbour.kafka, neighbour.namespace)

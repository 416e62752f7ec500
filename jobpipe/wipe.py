"""Wipe a namespace: every Redis key and Kafka topic it owns.

For throwaway namespaces only (a load-test run, a benchmark): nothing here
asks whether the jobs it deletes were run.
"""

from __future__ import annotations

import redis
from confluent_kafka.admin import AdminClient

from jobpipe import names
from jobpipe.connections import kafka_admin_config
from jobpipe.settings import KafkaSettings

UNLINK_CHUNK = 1000


def delete_keys(client: redis.Redis[bytes], ns: str) -> int:
    """UNLINK every key of namespace ``ns``; returns how many.

    A run may leave a key per job (explicit idempotency keys, unique windows),
    so keys go a thousand per call, not one round trip each (200,000 keys took
    minutes on a busy box).
    """
    chunk: list[bytes] = []
    deleted = 0
    for key in client.scan_iter(match=names.namespace_pattern(ns), count=UNLINK_CHUNK):
        chunk.append(key)
        if len(chunk) >= UNLINK_CHUNK:
            deleted += int(client.unlink(*chunk))
            chunk.clear()
    if chunk:
        deleted += int(client.unlink(*chunk))
    return deleted


def delete_topics(kafka: KafkaSettings, ns: str, timeout_s: float = 30.0) -> list[str]:
    """Delete every Kafka topic of namespace ``ns`` and wait until Kafka did; returns them."""
    admin = AdminClient(kafka_admin_config(kafka))
    prefix = names.namespace_topic_prefix(ns)
    mine = [t for t in admin.list_topics(timeout=timeout_s).topics if t.startswith(prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=timeout_s).values():
            future.result(timeout=timeout_s)
    return mine

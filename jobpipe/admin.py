"""Kafka topic management: create or update every topic of every queue."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from jobpipe.connections import kafka_admin_config
from jobpipe.errors import KafkaUnavailable
from jobpipe.kafka_metadata import BrokerWatch, fetch_metadata
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicChange:
    """What ``apply_topics`` did to one topic: ``created``, ``grown`` or ``unchanged``."""

    topic: str
    action: str
    partitions: int


def desired_topics(settings: Settings, queues: list[QueueSpec] | None = None) -> dict[str, int]:
    """Every topic the topology needs, with its partition count."""
    wanted: dict[str, int] = {}
    for spec in queues if queues is not None else list(settings.topology.queues.values()):
        for topic in spec.topics(settings.namespace):
            wanted[topic] = spec.partitions
    return wanted


def apply_topics(
    settings: Settings, queues: list[QueueSpec] | None = None, timeout_s: float = 30.0
) -> list[TopicChange]:
    """Create missing topics and grow partition counts; never shrinks or deletes.

    Idempotent: a second run reports every topic ``unchanged``. Returns once
    every topic has a leader for each partition.

    Raises:
        KafkaUnavailable: the broker did not answer in ``timeout_s`` (one that
            refuses connections is waited for: it may be starting).
        ConfigError: the broker refused the client's credentials
            (:func:`jobpipe.kafka_metadata.fetch_metadata`).
    """
    watch = BrokerWatch(settings.kafka.bootstrap)
    admin = AdminClient({**kafka_admin_config(settings.kafka), **watch.config()})
    wanted = desired_topics(settings, queues)
    metadata = fetch_metadata(admin, watch, timeout_s,
                              wait_while_down=True)  # a broker still starting
    current = {name: len(t.partitions) for name, t in metadata.topics.items() if not t.error}
    kafka = settings.kafka
    topic_config = {"min.insync.replicas": str(kafka.min_insync_replicas)}
    to_create = [NewTopic(t, num_partitions=n, replication_factor=kafka.replication_factor,
                          config=topic_config) for t, n in wanted.items() if t not in current]
    to_grow = [NewPartitions(t, n) for t, n in wanted.items() if t in current and current[t] < n]
    changes = [TopicChange(t, "unchanged", current[t]) for t, n in wanted.items()
               if t in current and current[t] >= n]
    futures = {**(admin.create_topics(to_create) if to_create else {}),
               **(admin.create_partitions(to_grow) if to_grow else {})}
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailable(f"could not create topic {topic}: {exc}") from exc
        action = "grown" if topic in current else "created"
        changes.append(TopicChange(topic, action, wanted[topic]))
        log.info("topic %s %s with %d partitions", topic, action, wanted[topic])
    _wait_for_leaders(admin, wanted, timeout_s)
    return sorted(changes, key=lambda c: c.topic)


def _wait_for_leaders(admin: AdminClient, wanted: dict[str, int], timeout_s: float) -> None:
    """Block until each topic shows all its partitions with a leader."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=timeout_s)
        missing = [t for t, n in wanted.items()
                   if t not in metadata.topics
                   or len(metadata.topics[t].partitions) < n
                   or any(p.leader < 0 for p in metadata.topics[t].partitions.values())]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"topics without leaders after {timeout_s}s: {missing[:5]}")
        time.sleep(0.1)


def member_partitions(admin: AdminClient, group: str, timeout_s: float = 5.0) -> list[int]:
    """How many partitions each member of consumer group ``group`` holds, as the
    group coordinator sees it; empty when the group has no members or the broker
    did not answer."""
    try:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=timeout_s)
    except (KafkaException, TimeoutError):  # no coordinator yet, or no answer in time
        return []
    return [len(m.assignment.topic_partitions) for m in desc.members]

"""Kafka topic management: create or update every topic of every queue."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from jobpipe.connections import kafka_admin_config
from jobpipe.errors import KafkaUnavailable
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


# A refusal may be a credential that has not reached the listener yet (a SCRAM
# user created a moment before is refused once or twice): it fails the call
# once it has lasted this long, instead of the whole timeout (30 s).
REFUSED_FOR_S = 2.0
# First wait for a metadata answer; it doubles up to the timeout's end, so a
# slow broker still gets its time and a refusal is looked at in between.
_FIRST_ASK_S = 0.5


def _current_partitions(admin: AdminClient, bootstrap: str, timeout_s: float,
                        refused: list[str]) -> dict[str, int]:
    """The partition count of each topic; ``refused`` is filled by the client's
    ``error_cb`` with SASL/TLS failures (they never reach the metadata error)."""
    now = time.monotonic()
    deadline, ask_s = now + timeout_s, _FIRST_ASK_S
    refused_since: float | None = None
    while True:
        try:
            metadata = admin.list_topics(timeout=max(0.01, min(ask_s, deadline - now)))
            return {name: len(t.partitions) for name, t in metadata.topics.items()
                    if not t.error}
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            now = time.monotonic()
            if refused and refused_since is None:
                refused_since = now
            if refused_since is not None and (now - refused_since >= REFUSED_FOR_S
                                              or now >= deadline):
                raise KafkaUnavailable(
                    f"Kafka at {bootstrap} refused the connection: {refused[-1]}; check "
                    "the security keys of kafka.config (sasl.username, sasl.password ...)"
                ) from None
            if now >= deadline:
                raise KafkaUnavailable(f"Kafka at {bootstrap} did not answer a metadata "
                                       f"request: {exc}") from exc
            ask_s *= 2


def apply_topics(
    settings: Settings, queues: list[QueueSpec] | None = None, timeout_s: float = 30.0
) -> list[TopicChange]:
    """Create missing topics and grow partition counts; never shrinks or deletes.

    Idempotent: a second run reports every topic ``unchanged``. Returns once
    every topic has a leader for each partition.

    Raises:
        KafkaUnavailable: the broker did not answer in ``timeout_s``, or refused
            the client's credentials for ``REFUSED_FOR_S``.
    """
    refused: list[str] = []

    def on_error(err: KafkaError) -> None:
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            refused.append(err.str())

    conf: dict[str, Any] = {**kafka_admin_config(settings.kafka), "error_cb": on_error}
    admin = AdminClient(conf)
    wanted = desired_topics(settings, queues)
    current = _current_partitions(admin, settings.kafka.bootstrap, timeout_s, refused)
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

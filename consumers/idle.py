"""Is a consumer group caught up? Committed offsets against high watermarks.

Runs on the fetcher thread (blocking broker calls). Used by
``Worker.run_until_idle``: the worker group on the main topics and, when the
process runs the retry relay, the retry group on the tier topics.
"""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from jobpipe import names
from jobpipe.connections import kafka_common_config
from jobpipe.settings import Settings

TIMEOUT_S = 5.0


def group_caught_up(consumer: Consumer, topics: list[str]) -> bool:
    """Whether ``consumer``'s group committed every partition of ``topics`` to its end.

    ``consumer`` must fetch nothing: a watermark query waits behind a fetch in
    flight on the same connection, which the broker holds for up to
    ``fetch.wait.max.ms`` (500 ms) when there is nothing new; on the worker's
    own consumer that was half a second per partition, per check.
    """
    if not topics:
        return True
    metadata = consumer.list_topics(timeout=TIMEOUT_S)
    tps = [TopicPartition(t, p) for t in topics if t in metadata.topics
           for p in metadata.topics[t].partitions]
    committed = consumer.committed(tps, timeout=TIMEOUT_S)
    for tp in committed:
        low, high = consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S)
        if high > low and tp.offset < high:
            return False
    return True


def caught_up(consumer: Consumer, settings: Settings, main_topics: list[str],
              retry_topics: list[str]) -> bool:
    """Commit ``consumer``'s stored offsets, then check the worker group (and the
    retry group), each through a probe that joins no group and fetches nothing."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise
    return all(_probe_caught_up(settings, role, topics)
               for role, topics in (("workers", main_topics), ("retry", retry_topics)))


def _probe_caught_up(settings: Settings, role: str, topics: list[str]) -> bool:
    """:func:`group_caught_up` of group ``role`` through a consumer of its own.

    Only the connection settings are the stages': the probe never subscribes,
    so it sends no join, heartbeat or leave, and commits nothing.
    """
    if not topics:
        return True
    probe = Consumer({**kafka_common_config(settings.kafka), "enable.auto.commit": False,
                      "group.id": names.group_id(settings.namespace, role)})
    try:
        return group_caught_up(probe, topics)
    finally:
        probe.close()

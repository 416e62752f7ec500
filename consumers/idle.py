"""Is a consumer group caught up? Committed offsets against high watermarks.

Runs on the fetcher thread (blocking broker calls). Used by
``Worker.run_until_idle``: the worker group on the main topics and, when the
process runs the retry relay, the retry group on the tier topics.
"""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from jobpipe import names
from jobpipe.connections import kafka_consumer_config
from jobpipe.settings import Settings

TIMEOUT_S = 5.0


def group_caught_up(consumer: Consumer, topics: list[str]) -> bool:
    """Whether ``consumer``'s group committed every partition of ``topics`` to its end."""
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
    """Commit stored offsets, then check the worker group (and the retry group)."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise
    if not group_caught_up(consumer, main_topics):
        return False
    if not retry_topics:
        return True
    probe = Consumer(kafka_consumer_config(
        settings.kafka, names.group_id(settings.namespace, "retry")))
    try:
        return group_caught_up(probe, retry_topics)
    finally:
        probe.close()

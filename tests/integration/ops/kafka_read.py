"""Read every message of a topic back (for counting ids), and a free-port helper."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from jobpipe.connections import kafka_consumer_config
from jobpipe.envelope import decode
from jobpipe.settings import KafkaSettings


def read_all(kafka: KafkaSettings, topic: str, timeout_s: float = 60.0,
             expect: int | None = None) -> list[Any]:
    """Decoded jobs of ``topic`` from the start up to its end offsets at call time
    (or until ``expect`` jobs arrived)."""
    consumer = Consumer(kafka_consumer_config(kafka, f"ops-read-{uuid.uuid4().hex[:8]}",
                                              **{"enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        jobs: list[Any] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends) and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error():
                    continue
                jobs.append(decode(msg.value()))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
            if expect is not None and len(jobs) >= expect:
                break
        return jobs
    finally:
        consumer.close()

"""Helpers for worker tests: produce envelopes straight to a main topic."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from jobpipe.settings import Settings


def make_job(queue: str, task: str, args: Any = None, **fields: Any) -> Job:
    return Job(id=fields.pop("id", None) or new_job_id(), queue=queue, task=task, args=args,
               enqueued_at=now_ns(), **fields)


def produce_raw(settings: Settings, topic: str, values: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer(kafka_producer_config(settings.kafka, **{"linger.ms": 5}))
    for key, value in values:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def produce_jobs(settings: Settings, jobs: list[Job]) -> None:
    by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
    for job in jobs:
        topic = names.main_topic(settings.namespace, job.queue, job.priority)
        by_topic.setdefault(topic, []).append((job.key.encode() if job.key else None,
                                               encode(job)))
    for topic, values in by_topic.items():
        produce_raw(settings, topic, values)


def setup_topics(settings: Settings) -> None:
    apply_topics(settings)

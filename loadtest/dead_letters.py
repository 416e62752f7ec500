"""Read the dead-letter topics back, for the ledger and the bad-input tests.

Each record is read as the worker wrote it (see the DLQ contract in the team
brief): the value is the job's envelope, or the raw bytes when they did not
decode, and the headers carry ``jp-reason``, ``jp-error`` and the source
topic, partition and offset. Reading needs no consumer group: every partition
is assigned from its start and read up to the end it had when reading began.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from jobpipe import names
from jobpipe.connections import kafka_consumer_config
from jobpipe.errors import KafkaUnavailable
from jobpipe.settings import Settings


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic.

    Attributes:
        job_id: the job's id, or ``None`` when the value is not a job object.
        reason: the ``jp-reason`` header (``exhausted``, ``invalid_json`` ...).
        error: the ``jp-error`` header, one line.
        source_topic, source_partition, source_offset: where the bad message was.
        value: the record value as stored.
        topic, partition, offset: where this DLQ record is.
    """

    job_id: str | None
    reason: str | None
    error: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    value: bytes
    topic: str
    partition: int
    offset: int


def _job_id(value: bytes) -> str | None:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    job_id = obj.get("id") if isinstance(obj, dict) else None
    return job_id if isinstance(job_id, str) else None


def _as_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _headers(raw: Any) -> dict[str, str]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): _text(v) for k, v in items}


def _dead_letter(value: bytes, headers: dict[str, str], topic: str, partition: int,
                 offset: int) -> DeadLetter:
    return DeadLetter(
        job_id=_job_id(value),
        reason=headers.get("jp-reason"),
        error=headers.get("jp-error"),
        source_topic=headers.get("jp-source-topic"),
        source_partition=_as_int(headers.get("jp-source-partition")),
        source_offset=_as_int(headers.get("jp-source-offset")),
        value=value, topic=topic, partition=partition, offset=offset)


def read_dead_letters(settings: Settings, queues: Iterable[str] | None = None,
                      timeout_s: float = 30.0) -> list[DeadLetter]:
    """Every record now in the dead-letter topics of ``queues`` (all when None).

    Raises:
        KafkaUnavailable: the broker did not answer, or the records could not
            all be read, within ``timeout_s``.
    """
    wanted = list(queues) if queues is not None else list(settings.topology.queues)
    topics = [names.dlq_topic(settings.namespace, q) for q in wanted]
    conf = kafka_consumer_config(
        settings.kafka, names.group_id(settings.namespace, f"ledger-{uuid.uuid4().hex[:8]}"),
        **{"enable.auto.commit": False, "enable.partition.eof": False})
    consumer = Consumer(conf)
    try:
        return _read_all(consumer, topics, timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailable(f"could not read the dead-letter topics: {exc}") from exc
    finally:
        consumer.close()


_TRANSIENT = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT,
                        KafkaError._TIMED_OUT})


def _watermarks(consumer: Consumer, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    """Low and high watermarks, retrying what a young or recovering broker says
    for a while (``NOT_LEADER_FOR_PARTITION`` right after a topic is created)."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                tp, timeout=max(0.1, deadline - time.monotonic()))
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _TRANSIENT)
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _read_all(consumer: Consumer, topics: list[str], timeout_s: float) -> list[DeadLetter]:
    deadline = time.monotonic() + timeout_s
    metadata = consumer.list_topics(timeout=timeout_s)
    ends: dict[tuple[str, int], int] = {}
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            continue  # no DLQ topic: nothing was dead-lettered there
        for partition in meta.partitions:
            low, high = _watermarks(consumer, TopicPartition(topic, partition), deadline)
            if high > low:
                ends[(topic, partition)] = high
    if not ends:
        return []
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
    out: list[DeadLetter] = []
    remaining = dict(ends)
    while remaining:
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"dead-letter topics not read to the end in {timeout_s}s: "
                                   f"{sorted(remaining)[:5]}")
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                continue
            where, offset = (msg.topic(), msg.partition()), msg.offset()
            if where[0] is None or where[1] is None or offset is None:
                continue
            key = (where[0], where[1])
            end = remaining.get(key)
            if end is None or offset >= end:
                continue
            value = msg.value() or b""
            out.append(_dead_letter(value, _headers(msg.headers()), key[0], key[1], offset))
            if offset + 1 >= end:
                del remaining[key]
    return out

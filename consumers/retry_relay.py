"""The retry relay: moves jobs from retry tier topics back to their main topic when due.

One consumer (group ``names.group_id(ns, "retry")``) reads every tier topic of
its queues. When a partition's head message is not yet due (message timestamp
+ tier delay), the partition is paused and the consumer seeks back to that
message; it is resumed when the message is due. So a waiting retry never
blocks fresh work, later-due partitions never block earlier-due ones, order
within a partition holds, and nothing spins while waiting.

Due messages are produced unchanged (value, key, headers) to the main topic of
the job's priority level. Offsets are stored only after Kafka acknowledged the
copy, so a crash re-sends (at-least-once; idempotency markers absorb it) but
never drops a retry. Bytes that are not a job go to the queue's DLQ.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from consumers.dlq_record import dlq_headers
from consumers.due import TierRoute, next_wake_s, priority_level, tier_routes, wait_ms
from jobpipe import metrics, names
from jobpipe.connections import kafka_consumer_config, kafka_producer_config
from jobpipe.errors import EnvelopeError
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
BATCH_MAX = 500
FAILED_SEND_BACKOFF_MS = 1000
_Partition = tuple[str, int]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _where(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed (not an error) message."""
    return msg.topic() or "", msg.partition() or 0, msg.offset() or 0


@dataclass
class _Batch:
    """Copies produced from one consume() batch, awaiting delivery reports."""

    offsets: dict[_Partition, list[int]] = field(default_factory=dict)
    failed: dict[tuple[str, int, int], str] = field(default_factory=dict)
    pending: int = 0


class RetryRelay:
    """Relay due retries of ``queues`` to their main topics.

    Args:
        settings: where Kafka is and the namespace.
        queues: the queues whose retry tiers this relay serves.
    """

    def __init__(self, settings: Settings, queues: list[QueueSpec]) -> None:
        self._settings = settings
        self._ns = settings.namespace
        self._routes: dict[str, TierRoute] = tier_routes(self._ns, queues)
        self._held: dict[_Partition, int] = {}  # partition -> due time, epoch ms

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set (blocking; run it on a thread).

        Creates its Kafka clients here, so call it after any fork.
        """
        if not self._routes:
            return
        kafka = self._settings.kafka
        consumer = Consumer(kafka_consumer_config(kafka, names.group_id(self._ns, "retry")))
        producer = Producer(kafka_producer_config(kafka, **{"linger.ms": 5}))
        consumer.subscribe(list(self._routes), on_assign=self._on_assign,
                           on_revoke=self._on_revoke, on_lost=self._on_lost)
        log.info("retry relay started on %d tier topics", len(self._routes))
        try:
            while not stop.is_set():
                self._resume_due(consumer)
                timeout_s = next_wake_s(list(self._held.values()), _now_ms(), IDLE_POLL_S)
                messages = consumer.consume(num_messages=BATCH_MAX, timeout=timeout_s)
                if messages:
                    self._relay(consumer, producer, messages, stop)
        finally:
            producer.flush(10)
            self._commit(consumer)
            consumer.close()
            log.info("retry relay stopped")

    # --- partitions held until due ---------------------------------------------------

    def _hold(self, consumer: Consumer, topic: str, partition: int, offset: int,
              due_ms: int) -> None:
        """Pause a partition and rewind it to ``offset`` until ``due_ms``."""
        tp = TopicPartition(topic, partition, offset)
        consumer.pause([tp])
        consumer.seek(tp)
        self._held[(topic, partition)] = due_ms

    def _resume_due(self, consumer: Consumer) -> None:
        now = _now_ms()
        due = [tp for tp, due_ms in self._held.items() if due_ms <= now]
        if due:
            consumer.resume([TopicPartition(t, p) for t, p in due])
            for tp in due:
                del self._held[tp]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.debug("retry relay assigned %d partitions", len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)
        self._commit(consumer)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._held.pop((tp.topic, tp.partition), None)

    @staticmethod
    def _commit(consumer: Consumer) -> None:
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("retry relay commit failed: %s", exc)

    # --- relaying ----------------------------------------------------------------------

    def _relay(self, consumer: Consumer, producer: Producer, messages: list[Message],
               stop: threading.Event) -> None:
        """Produce the due messages of a batch, hold the rest, store what was acked."""
        batch = _Batch()
        now = _now_ms()
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("retry relay consume error: %s", err)
                continue
            topic, partition, offset = _where(msg)
            if (topic, partition) in self._held:
                continue  # an earlier message of this partition is not due yet
            route = self._routes[topic]
            ts_type, ts_ms = msg.timestamp()
            wait = wait_ms(None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms,
                           route.delay_ms, now)
            if wait > 0:
                self._hold(consumer, topic, partition, offset, now + wait)
                continue
            self._send(producer, msg, route, batch)
        self._await(producer, batch, stop)
        self._store(consumer, batch, now)

    def _send(self, producer: Producer, msg: Message, route: TierRoute, batch: _Batch) -> None:
        topic, partition, offset = _where(msg)
        value: bytes = msg.value() or b""
        queue = route.spec.name
        headers: Any = msg.headers()
        try:
            target = names.main_topic(self._ns, queue, priority_level(value, route.spec))
            reason = ""
        except EnvelopeError as exc:
            target = names.dlq_topic(self._ns, queue)
            reason = exc.reason
            headers = dlq_headers(exc.reason, str(exc), topic, partition, offset)

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            batch.pending -= 1
            if err is not None:
                batch.failed[(topic, partition, offset)] = str(err)
            elif reason:
                metrics.JOBS_DEAD_LETTERED.labels(queue, reason).inc()
                log.error("retry relay dead-lettered %s[%d]@%d: %s", topic, partition, offset,
                          reason)

        batch.offsets.setdefault((topic, partition), []).append(offset)
        batch.pending += 1
        while True:
            try:
                producer.produce(target, value=value, key=msg.key(), headers=headers,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain

    @staticmethod
    def _await(producer: Producer, batch: _Batch, stop: threading.Event) -> None:
        """Wait for every delivery report of the batch (bounded after ``stop``)."""
        give_up = None
        while batch.pending > 0:
            producer.flush(1.0)
            if stop.is_set():
                give_up = give_up or time.monotonic() + 10
                if time.monotonic() > give_up:
                    log.warning("retry relay stopping with %d copies unacknowledged; they "
                                "will be sent again", batch.pending)
                    return

    def _store(self, consumer: Consumer, batch: _Batch, now_ms: int) -> None:
        """Store offsets up to each partition's first unacknowledged copy; rewind there."""
        to_store = []
        for (topic, partition), offsets in batch.offsets.items():
            next_offset = None
            for offset in offsets:
                problem = batch.failed.get((topic, partition, offset))
                if problem is not None or batch.pending > 0:
                    log.warning("retry relay could not send %s[%d]@%d (%s); retrying in %d ms",
                                topic, partition, offset, problem or "no report",
                                FAILED_SEND_BACKOFF_MS)
                    self._hold(consumer, topic, partition, offset,
                               now_ms + FAILED_SEND_BACKOFF_MS)
                    break
                next_offset = offset + 1
            if next_offset is not None:
                to_store.append(TopicPartition(topic, partition, next_offset))
        if to_store:
            try:
                consumer.store_offsets(offsets=to_store)
            except KafkaException as exc:  # partition revoked meanwhile: it is re-read
                log.info("retry relay could not store offsets: %s", exc)

"""The retry relay: moves jobs from retry tier topics back to their main topic when due.

One consumer (group ``names.group_id(ns, "retry")``) reads every tier topic of
its queues. A retry is due at its message timestamp + tier delay + its own
jitter (see :mod:`consumers.retry.tiers`). Retries not yet due wait in memory in a
:class:`~consumers.retry.tiers.DueQueue` and leave each at its own due time, so a
waiting retry never blocks fresh work, a later-due retry never holds back an
earlier-due one (even in the same partition), and a burst of failures that
jitter spread out goes back spread out. Past ``HOLD_MAX_BYTES`` held, the
relay pauses its partitions until half of that has left. A consumer whose group
membership stays stuck is replaced (see :mod:`consumers.group_health`).

Due messages are produced unchanged (value, key, headers) to the main topic of
the job's priority level. A partition's offset is stored only up to its first
message whose copy Kafka has not acknowledged (held ones included), so a crash
re-sends (at-least-once; idempotency markers absorb it) but never drops a
retry. Bytes that are not a job go to the queue's DLQ.
"""

from __future__ import annotations

import logging
import threading
import time
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

from consumers.dlq.record import dlq_headers
from consumers.fetcher import fetch_available
from consumers.group_health import GuardedConsumer
from consumers.offsets import OffsetTracker
from consumers.retry.tiers import (
    DueQueue,
    TierRoute,
    jitter_ms,
    next_wake_s,
    tier_routes,
    wait_ms,
)
from jobpipe import metrics, names
from jobpipe.connections import kafka_producer_config
from jobpipe.errors import EnvelopeError
from jobpipe.routing import priority_level
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
BATCH_MAX = 500
FAILED_SEND_BACKOFF_MS = 1000
HOLD_MAX_BYTES = 64 * 1024 * 1024
REVOKE_FLUSH_S = 5.0
_Partition = tuple[str, int]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _where(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed (not an error) message."""
    return msg.topic() or "", msg.partition() or 0, msg.offset() or 0


class RetryRelay:
    """Relay due retries of ``queues`` to their main topics.

    Args:
        settings: where Kafka is and the namespace.
        queues: the queues whose retry tiers this relay serves.
        hold_max_bytes: memory held by not-yet-due retries before the relay
            stops reading.
    """

    def __init__(self, settings: Settings, queues: list[QueueSpec],
                 hold_max_bytes: int = HOLD_MAX_BYTES) -> None:
        self._settings = settings
        self._ns = settings.namespace
        self._routes: dict[str, TierRoute] = tier_routes(self._ns, queues)
        self._waiting: DueQueue[Message] = DueQueue()
        self._offsets = OffsetTracker()
        self._hold_max_bytes = hold_max_bytes
        self._throttled = False
        self._producer: Producer | None = None

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set (blocking; run it on a thread).

        Creates its Kafka clients here, so call it after any fork.
        """
        if not self._routes:
            return
        producer = self._producer = Producer(
            kafka_producer_config(self._settings.kafka))
        guard = GuardedConsumer(
            self._settings.kafka, self._settings.worker.group_stuck_s,
            names.group_id(self._ns, "retry"), list(self._routes), "retry relay",
            on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._guard = guard
        consumer = guard.consumer
        log.info("retry relay started on %d tier topics", len(self._routes))
        try:
            while not stop.is_set():
                if guard.renew_if_stuck():
                    consumer = guard.consumer
                for msg in self._waiting.pop_due(_now_ms()):
                    self._send(producer, msg)
                producer.poll(0)  # delivery reports complete offsets
                self._store(consumer)
                self._throttle(consumer)
                due = self._waiting.next_due_ms()
                timeout_s = next_wake_s([] if due is None else [due], _now_ms(), IDLE_POLL_S)
                messages = fetch_available(consumer, BATCH_MAX, timeout_s, stop)
                if messages:
                    self._take(producer, messages)
        finally:
            producer.flush(10)
            self._store(consumer)
            self._commit(consumer)
            consumer.close()
            log.info("retry relay stopped")

    # --- partitions -------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.debug("retry relay assigned %d partitions", len(partitions))
        if self._throttled and partitions:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._producer is not None:  # store what is already on its way
            self._producer.flush(REVOKE_FLUSH_S)
        self._store(consumer)
        self._forget(partitions)
        self._commit(consumer)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._waiting.drop(gone)
        for topic, partition in gone:
            self._offsets.drop(topic, partition)

    def _throttle(self, consumer: Consumer) -> None:
        """Stop reading while too much waits in memory; read again below half of it."""
        held = self._waiting.held_bytes
        if not self._throttled and held > self._hold_max_bytes:
            self._throttled = True
            consumer.pause(consumer.assignment())
            log.info("retry relay holds %d bytes of retries; paused reading", held)
        elif self._throttled and held < self._hold_max_bytes // 2:
            self._throttled = False
            consumer.resume(consumer.assignment())

    def _store(self, consumer: Consumer) -> None:
        """Store each partition's offset up to its first retry not yet safe in Kafka."""
        moved = self._offsets.take_committable()
        if not moved:
            return
        try:
            consumer.store_offsets(offsets=[TopicPartition(t, p, o)
                                            for (t, p), o in moved.items()])
        except KafkaException as exc:  # partition revoked meanwhile: it is re-read
            log.info("retry relay could not store offsets: %s", exc)

    @staticmethod
    def _commit(consumer: Consumer) -> None:
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("retry relay commit failed: %s", exc)

    # --- relaying ----------------------------------------------------------------------

    def _take(self, producer: Producer, messages: list[Message]) -> None:
        """Send the due messages of a batch now; the rest wait in memory until due."""
        now = _now_ms()
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("retry relay consume error: %s", err)
                continue
            topic, partition, offset = _where(msg)
            route = self._routes[topic]
            self._offsets.add(topic, partition, offset)
            ts_type, ts_ms = msg.timestamp()
            wait = wait_ms(None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts_ms,
                           route.delay_ms, now, jitter_ms(msg.headers(), route.delay_ms))
            if wait > 0:
                self._waiting.push(now + wait, (topic, partition), len(msg.value() or b""), msg)
            else:
                self._send(producer, msg)

    def _send(self, producer: Producer, msg: Message) -> None:
        topic, partition, offset = _where(msg)
        route = self._routes[topic]
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
            if err is not None:
                log.warning("retry relay could not send %s[%d]@%d (%s); retrying in %d ms",
                            topic, partition, offset, err, FAILED_SEND_BACKOFF_MS)
                self._waiting.push(_now_ms() + FAILED_SEND_BACKOFF_MS, (topic, partition),
                                   len(value), msg)
                return
            self._offsets.complete(topic, partition, offset)
            if reason:
                metrics.JOBS_DEAD_LETTERED.labels(queue, reason).inc()
                log.error("retry relay dead-lettered %s[%d]@%d: %s", topic, partition, offset,
                          reason)

        while True:
            try:
                producer.produce(target, value=value, key=msg.key(), headers=headers,
                                 on_delivery=on_delivery)
                return
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain

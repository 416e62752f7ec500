"""The Kafka side of the bridge: produce batches, classify delivery reports.

One idempotent producer (``acks=all``, enforced by
:func:`jobpipe.connections.kafka_producer_config`) per bridge process, created
after fork. A batch goes out in one ``produce_batch`` call (about three times
the rate of a ``produce`` per job from Python); value = the envelope bytes
untouched, key = :func:`~jobpipe.envelope.peek_key` (no decoding), topic = the
main topic of the list's priority level. Each job's delivery report lands on
its :class:`~bridge.batch.Batch`. The producer lingers ``bridge.linger_ms``;
the bridge flushes the take of a trickle at once (:mod:`bridge.pace`).

``message.timeout.ms`` is 0 (infinite) unless configured: a broker outage
must never time a job out into loss. librdkafka retries retriable errors
itself; a report that still fails retriably is produced again by the bridge.
Permanent errors (:data:`PERMANENT`) make the job dead.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from bridge.batch import Batch, DeadJob
from jobpipe.connections import kafka_producer_config
from jobpipe.envelope import peek_key
from jobpipe.kafka_refusal import Refusals
from jobpipe.settings import Settings

log = logging.getLogger(__name__)

# Errors no retry can fix: the job goes to the dead list with this reason.
PERMANENT: dict[int, str] = {
    KafkaError.MSG_SIZE_TOO_LARGE: "message_too_large",
    KafkaError.RECORD_LIST_TOO_LARGE: "message_too_large",
    KafkaError.UNKNOWN_TOPIC_OR_PART: "unknown_topic",
    KafkaError._UNKNOWN_TOPIC: "unknown_topic",
    KafkaError._UNKNOWN_PARTITION: "unknown_topic",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "not_authorized",
    KafkaError.INVALID_RECORD: "invalid_record",
    KafkaError.TOPIC_EXCEPTION: "invalid_topic",
    KafkaError.POLICY_VIOLATION: "policy_violation",
}
# Errors that mean "the broker is not there": logged once per interval.
_OUTAGE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE,
           KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT}
RETRY_BACKOFF_S = 1.0


def producer_config(settings: Settings) -> dict[str, Any]:
    """The bridge's producer properties: tuned batching, no timeout into loss."""
    bridge = settings.bridge
    in_flight_jobs = bridge.batch_size * bridge.max_batches_in_flight
    return kafka_producer_config(settings.kafka, **{
        "linger.ms": bridge.linger_ms,
        "compression.type": bridge.compression,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": max(100_000, 2 * in_flight_jobs),
        "message.timeout.ms": 0,
        # Connection failures reach error_cb, which logs them once per interval;
        # librdkafka's own log would print one line per reconnect attempt.
        "log_level": 2,
    })


class Relay:
    """Produces batches and turns delivery reports into outcomes."""

    def __init__(self, settings: Settings, log_interval_s: float) -> None:
        self._settings = settings
        self._log_interval_s = log_interval_s
        self._last_outage_log_s = -1e9
        self.outage_since_s: float | None = None
        self.fatal = False
        self.refusals = Refusals(settings.kafka.bootstrap)
        """Refused credentials: the bridge stops once they are the answer."""
        self._producer = self._create()

    def _create(self) -> Producer:
        conf = producer_config(self._settings)
        conf["error_cb"] = self._on_error
        return Producer(conf)

    def _on_error(self, err: KafkaError) -> None:
        if self.refusals.heard(err):
            if self.refusals.first_s == self.refusals.last_s:  # once a spell
                log.warning("Kafka refused the producer (%s); the bridge stops if that "
                            "goes on", err.str())
        elif err.fatal():
            log.error("Kafka producer fatal error: %s; recreating the producer", err)
            self.fatal = True
        elif err.code() in _OUTAGE:
            now = time.monotonic()
            if self.outage_since_s is None:
                self.outage_since_s = now
            if now - self._last_outage_log_s >= self._log_interval_s:
                self._last_outage_log_s = now
                log.warning("Kafka unreachable (%s); taking stops when %d batches are in "
                            "flight, Redis buffers the rest", err.str(),
                            self._settings.bridge.max_batches_in_flight)
        else:
            log.warning("Kafka producer error: %s", err)

    def send(self, batch: Batch, values: list[bytes] | None = None) -> None:
        """Produce ``values`` (default: the whole batch) with reports to ``batch``."""
        values = batch.items if values is None else values
        messages: list[dict[str, Any]] = [{"value": raw, "key": peek_key(raw)} for raw in values]
        try:
            queued = self._producer.produce_batch(batch.source.topic, messages,
                                                  on_delivery=batch.on_delivery)
        except (BufferError, KafkaException) as exc:
            log.warning("produce to %s failed (%s); retrying", batch.source.topic, exc)
            self._retry_later(batch, values)
            return
        if queued < len(messages):
            for message in messages:
                err = message.get("_error")
                if err is not None:
                    batch.errors.append((err, message["value"]))

    def settle(self, batch: Batch) -> None:
        """Classify a batch's failed reports: dead for good, or produce again."""
        if not batch.errors:
            return
        errors, batch.errors = batch.errors, []
        for err, raw in errors:
            reason = PERMANENT.get(err.code()) if isinstance(err, KafkaError) else None
            if reason is not None and not err.fatal():
                batch.settle_dead(DeadJob(raw, reason, err.str()))
            else:
                batch.retry.append(raw)
                batch.retry_at_s = time.monotonic() + RETRY_BACKOFF_S
        if batch.retry:
            log.warning("%d jobs of %s failed retriably (%s); producing them again",
                        len(batch.retry), batch.source.topic, errors[0][0])

    def resend_due(self, batch: Batch, now_s: float) -> None:
        """Produce a batch's retriable failures again once their backoff passed."""
        if batch.retry and now_s >= batch.retry_at_s:
            values, batch.retry = batch.retry, []
            self.send(batch, values)

    @staticmethod
    def _retry_later(batch: Batch, values: list[bytes]) -> None:
        batch.retry.extend(values)
        batch.retry_at_s = time.monotonic() + RETRY_BACKOFF_S

    def poll(self, timeout_s: float) -> int:
        """Serve delivery reports and error callbacks."""
        return int(self._producer.poll(timeout_s))

    def healthy(self) -> None:
        """A batch was acknowledged: if Kafka had been unreachable, say it is back."""
        if self.outage_since_s is not None:
            log.info("Kafka answers again after %.1f s", time.monotonic() - self.outage_since_s)
            self.outage_since_s = None

    def restart(self) -> None:
        """After a fatal error: fail everything outstanding (it is produced again
        through the retry path) and start a new producer."""
        old = self._producer
        old.purge(in_queue=True, in_flight=True)
        old.poll(0)
        old.flush(0)
        self._producer = self._create()
        self.fatal = False

    def outstanding(self) -> int:
        """Messages the producer has not reported on yet."""
        return len(self._producer)

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every report; returns how many are missing."""
        return int(self._producer.flush(timeout_s))

"""Kafka consumer lag of the workers group, measured on a background thread.

The bridge bounds a fair queue's Kafka backlog (``spec.max_kafka_lag``). The
measurement (committed offsets of ``names.group_id(ns, "workers")`` against the
topic's end offsets) takes admin round trips, so it runs on its own thread
with its own AdminClient, created in the bridge process (after fork), and
never blocks the move loop. Partitions without a committed offset count from
their earliest offset, as the workers' ``auto.offset.reset=earliest`` would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from jobpipe import names
from jobpipe.connections import kafka_admin_config
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LagReading:
    """One measurement.

    Attributes:
        lag: unconsumed jobs in the queue's main topic.
        acked_before: the queue's "jobs Kafka acknowledged" counter read just
            before the measurement began (see :func:`bridge.fair.lag_allows`).
    """

    lag: int
    acked_before: int


class LagMonitor:
    """Measures the lag of some queues every ``interval_s`` on a daemon thread."""

    def __init__(self, settings: Settings, specs: list[QueueSpec],
                 acked_counter: Callable[[str], int], interval_s: float = 0.2,
                 timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._specs = specs
        self._acked = acked_counter
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._readings: dict[str, LagReading] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bridge-lag", daemon=True)

    def start(self) -> None:
        """Start measuring (no-op when no queue has a lag bound)."""
        if self._specs:
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._timeout_s + 1)

    def reading(self, queue: str) -> LagReading | None:
        """The latest measurement of ``queue``, or ``None`` before the first."""
        return self._readings.get(queue)

    def _run(self) -> None:
        admin = AdminClient(kafka_admin_config(self._settings.kafka))
        last_error_s = -1e9
        while not self._stop.is_set():
            for spec in self._specs:
                acked_before = self._acked(spec.name)
                try:
                    lag = self.measure(admin, spec)
                except (KafkaException, TimeoutError) as exc:
                    if time.monotonic() - last_error_s > self._settings.bridge.log_interval_s:
                        last_error_s = time.monotonic()
                        log.warning("cannot measure Kafka lag of %s: %s", spec.name, exc)
                    continue
                self._readings[spec.name] = LagReading(lag, acked_before)
            self._stop.wait(self._interval_s)

    def measure(self, admin: AdminClient, spec: QueueSpec) -> int:
        """Unconsumed jobs of the workers group in ``spec``'s main topic."""
        ns = self._settings.namespace
        topic = names.main_topic(ns, spec.name, 0)
        parts = [TopicPartition(topic, p) for p in range(spec.partitions)]
        group = names.group_id(ns, "workers")
        committed_f = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, parts)], request_timeout=self._timeout_s)
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        ends_f = admin.list_offsets({tp: latest for tp in parts}, request_timeout=self._timeout_s)
        starts_f = admin.list_offsets({tp: earliest for tp in parts},
                                      request_timeout=self._timeout_s)
        committed = {tp.partition: tp.offset for tp in
                     committed_f[group].result(self._timeout_s).topic_partitions}
        ends = {tp.partition: f.result(self._timeout_s).offset for tp, f in ends_f.items()}
        starts = {tp.partition: f.result(self._timeout_s).offset for tp, f in starts_f.items()}
        lag = 0
        for p, end in ends.items():
            done = committed.get(p, -1)
            if done is None or done < 0:
                done = starts.get(p, 0)
            lag += max(0, end - done)
        return lag

"""The worker's shared Kafka producer: retries, DLQ records and follow-up jobs.

One idempotent ``acks=all`` producer per process, polled on its own thread so
delivery reports never wait on the event loop. A failed delivery is produced
again (after ``retry_delay_s``) until Kafka takes it: the caller's offset is
stored only after ``on_delivered`` ran, so nothing is acknowledged early.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from jobpipe.connections import kafka_producer_config
from jobpipe.settings import KafkaSettings

log = logging.getLogger(__name__)

Delivered = Callable[[], None]
Headers = list[tuple[str, bytes]]
_Record = tuple[str, bytes, bytes | None, Headers | None, Delivered | None]


class DeliveringProducer:
    """An idempotent producer with a poll thread and produce-until-delivered.

    Args:
        settings: Kafka settings (``acks=all`` and idempotence are enforced).
        retry_delay_s: pause before a failed delivery is produced again.
    """

    def __init__(self, settings: KafkaSettings, retry_delay_s: float = 1.0) -> None:
        self._producer = Producer(kafka_producer_config(
            settings, **{"compression.type": "lz4"}))
        self._retry_delay_s = retry_delay_s
        self._again: deque[tuple[float, _Record]] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="jobpipe-producer",
                                        daemon=True)
        self._thread.start()

    def produce(self, topic: str, value: bytes, key: bytes | None = None,
                headers: Headers | None = None,
                on_delivered: Delivered | None = None) -> None:
        """Produce one record; ``on_delivered`` runs (on the poll thread) once Kafka has it."""
        self._produce((topic, value, key, headers, on_delivered))

    def _produce(self, record: _Record) -> None:
        topic, value, key, headers, on_delivered = record

        def report(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                if on_delivered is not None:
                    on_delivered()
                return
            log.warning("delivery to %s failed (%s); producing it again in %.1fs",
                        topic, err, self._retry_delay_s)
            self._again.append((time.monotonic() + self._retry_delay_s, record))

        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers,  # type: ignore[arg-type]
                                       on_delivery=report)
                return
            except BufferError:
                self._producer.poll(0.01)  # local queue full: let deliveries drain

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)
            now = time.monotonic()
            while self._again and self._again[0][0] <= now:
                self._produce(self._again.popleft()[1])

    def pending(self) -> int:
        """Records produced and not yet acknowledged (including ones waiting to be re-sent)."""
        return len(self._producer) + len(self._again)

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for outstanding deliveries; returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.pending()

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, then stop the poll thread."""
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join()
        self._producer.flush(0)

    def raw(self) -> Any:
        """The underlying confluent-kafka producer (for metadata calls)."""
        return self._producer

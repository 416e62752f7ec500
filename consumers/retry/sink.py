"""Send a failed job onward: to its retry tier, or to the queue's DLQ.

A retried job carries ``attempt + 1`` and the error appended to ``errors``
(type, message, traceback tail, worker, time). A DLQ record carries the
envelope with the final error appended (or the raw bytes when they never
decoded) and the headers ``jp-reason``, ``jp-error``, ``jp-source-topic``,
``jp-source-partition``, ``jp-source-offset``; its key is the original key.
The caller stores the source offset only when ``on_delivered`` runs.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, replace
from typing import Any

from consumers.dlq.record import dlq_headers
from consumers.heartbeat import worker_id
from consumers.producing import Delivered, DeliveringProducer
from consumers.retry.policy import Timeout
from consumers.retry.tiers import jitter_header
from jobpipe import names
from jobpipe.envelope import Job, encode, now_ns

TRACEBACK_TAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class MessageOrigin:
    """Where a message came from (for DLQ headers and the record key)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


def error_record(exc: BaseException, worker: str | None = None) -> dict[str, Any]:
    """The ``errors`` entry of one failure: type, message, traceback tail, worker, time."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "type": "Timeout" if isinstance(exc, Timeout) else type(exc).__name__,
        "message": str(exc)[:1000],
        "traceback": tb[-TRACEBACK_TAIL_CHARS:],
        "worker": worker or worker_id(),
        "at": now_ns(),
    }


def one_line(text: str, limit: int = 300) -> str:
    """A message fit for a header: first line only, capped."""
    return (text.splitlines() or [""])[0][:limit]


class FailureSink:
    """Produces failed jobs to retry tiers and dead letters to the DLQ.

    Args:
        producer: the process's shared producer.
        namespace: topic namespace.
    """

    def __init__(self, producer: DeliveringProducer, namespace: str) -> None:
        self._producer = producer
        self._ns = namespace

    def retry(self, job: Job, delay_s: float, jitter_s: float, error: dict[str, Any],
              source: MessageOrigin, on_delivered: Delivered) -> None:
        """Produce ``job`` (attempt + 1, error appended) to its queue's ``delay_s`` tier,
        to wait ``jitter_s`` more than the tier's delay."""
        again = replace(job, attempt=job.attempt + 1, errors=[*job.errors, error])
        self._producer.produce(names.retry_topic(self._ns, job.queue, delay_s), encode(again),
                               source.key, [jitter_header(jitter_s)], on_delivered)

    def dead_letter(self, queue: str, value: bytes, reason: str, message: str,
                    source: MessageOrigin, on_delivered: Delivered) -> None:
        """Produce ``value`` to ``queue``'s DLQ with the contract headers."""
        headers = dlq_headers(reason, one_line(message), source.topic, source.partition,
                              source.offset)
        self._producer.produce(names.dlq_topic(self._ns, queue), value, source.key, headers,
                               on_delivered)

    def dead_letter_job(self, job: Job, reason: str, error: dict[str, Any], source: MessageOrigin,
                        on_delivered: Delivered) -> None:
        """Dead-letter a decoded job with its final error appended."""
        final = replace(job, errors=[*job.errors, error])
        self.dead_letter(job.queue, encode(final), reason,
                         f"{error['type']}: {error['message']}", source, on_delivered)

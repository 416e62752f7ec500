"""What a handler receives besides its arguments: :class:`JobContext`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobpipe.envelope import Job

# (context, queue, task, args, options) -> job id; produced straight to Kafka by the
# worker, which holds the parent job until Kafka acknowledged every follow-up.
EnqueueFn = Callable[["JobContext", str, str, Any, dict[str, Any]], str]


class JobContext:
    """The job being run, and a way to enqueue follow-up jobs.

    Attributes:
        job_id, queue, task, attempt, max_attempts, tenant, key: from the envelope.
        enqueued_at_ns: when the producer accepted the job (ns since the epoch).
        kafka_timestamp_ms: when the job was written to its Kafka topic (by the
            bridge, or the retry relay), ms since the epoch; ``None`` if unknown.
        kafka_topic, kafka_partition: where the job was read from (``None`` if
            unknown); which worker process runs which partition shows in them.
        job: the whole :class:`~jobpipe.envelope.Job`.
    """

    __slots__ = ("_cancelled", "_delivered", "_enqueue", "_on_settled", "_produced", "job",
                 "kafka_partition", "kafka_timestamp_ms", "kafka_topic")

    def __init__(self, job: Job, enqueue: EnqueueFn, kafka_timestamp_ms: int | None = None,
                 kafka_topic: str | None = None, kafka_partition: int | None = None) -> None:
        self.job = job
        self.kafka_timestamp_ms = kafka_timestamp_ms
        self.kafka_topic = kafka_topic
        self.kafka_partition = kafka_partition
        self._enqueue = enqueue
        # Follow-ups produced (by the handler's thread) and acknowledged (on the loop):
        # two counters, each written by one thread, so no lock is needed.
        self._produced = 0
        self._delivered = 0
        self._on_settled: Callable[[], None] | None = None
        self._cancelled = False  # set by the worker (on the loop) when cancelling is asked

    @property
    def cancelled(self) -> bool:
        """Someone asked to cancel this job (queues with ``track_status``).

        A sync handler checks it now and then and returns early; an async one
        is cancelled instead (``asyncio.CancelledError``, so it can clean up).
        Either way the job ends ``cancelled`` and is never retried.
        """
        return self._cancelled

    @property
    def job_id(self) -> str:
        """The job's id (stable across retries and replays)."""
        return self.job.id

    @property
    def queue(self) -> str:
        """The job's queue."""
        return self.job.queue

    @property
    def task(self) -> str:
        """The task name."""
        return self.job.task

    @property
    def attempt(self) -> int:
        """1 on first delivery, +1 per retry."""
        return self.job.attempt

    @property
    def max_attempts(self) -> int:
        """After this many failures the job is dead-lettered."""
        return self.job.max_attempts

    @property
    def tenant(self) -> str | None:
        """The job's tenant, if any."""
        return self.job.tenant

    @property
    def key(self) -> str | None:
        """The ordering key, if any."""
        return self.job.key

    @property
    def enqueued_at_ns(self) -> int:
        """Producer wall-clock time, ns since the epoch."""
        return self.job.enqueued_at

    def enqueue(self, queue: str, task: str, args: Any = None, **options: Any) -> str:
        """Enqueue a follow-up job, produced straight to Kafka.

        This job counts as done only once Kafka acknowledged every follow-up.

        Args:
            queue, task, args: as for the producer.
            options: ``key``, ``tenant``, ``priority``, ``max_attempts``,
                ``idempotency_key``.

        Returns:
            The new job's id.

        Raises:
            UnknownQueue: the queue is not declared.
        """
        return self._enqueue(self, queue, task, args, options)

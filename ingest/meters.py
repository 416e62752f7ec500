"""Prometheus counters of the intake, counted per call (never per job).

Label children are looked up once per queue: ``.labels()`` takes a lock and a
dict lookup, which the microsecond path should not pay on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.plan import PushPlan
from jobpipe import metrics
from jobpipe.errors import JobRejected


class IntakeMeters:
    """Per-queue metric children, created on first use."""

    def __init__(self) -> None:
        self._accepted: dict[str, tuple[Any, Any]] = {}

    def accepted(self, queue: str, jobs: int, seconds: float) -> None:
        """Count ``jobs`` accepted by one call that took ``seconds``."""
        pair = self._accepted.get(queue)
        if pair is None:
            pair = self._accepted[queue] = (metrics.JOBS_ENQUEUED.labels(queue),
                                            metrics.ENQUEUE_SECONDS.labels(queue))
        pair[0].inc(jobs)
        pair[1].observe(seconds)

    def planned(self, queue: str, build: Callable[[], PushPlan]) -> PushPlan:
        """Build a push plan, counting a ``bad_input`` rejection if the jobs are refused."""
        try:
            return build()
        except JobRejected:
            self.rejected(str(queue), "bad_input")
            raise

    def rejected(self, queue: str, reason: str) -> None:
        """Count one refused call (``bad_input``, ``full``, ``unavailable``)."""
        metrics.ENQUEUE_REJECTED.labels(queue, reason).inc()

"""Per-batch metrics of finished jobs, so the hot path stays cheap.

Counters are incremented once per ``(queue, task)`` per batch. Histograms are
filled bucket by bucket with one increment per bucket touched, instead of one
locked ``observe`` per job; the result is what ``observe`` would have produced.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Sequence
from functools import partial
from typing import Any

from jobpipe import metrics


def observe_many(child: Any, values: Sequence[float]) -> None:
    """Observe many values on a labelled histogram child in one go."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:  # not the layout we know
        for value in values:
            child.observe(value)
        return
    for index, n in Tally(map(partial(bisect_left, bounds), values)).items():
        buckets[index].inc(n)
    total.inc(sum(values))


class BatchMetrics:
    """Records whole batches, on label children looked up once."""

    def __init__(self) -> None:
        self._child = metrics.LabelChildren()

    def finished(self, queue: str, task: str, run_s: Sequence[float],
                 enqueued_at_ns: Sequence[int], finished_ns: Sequence[int]) -> None:
        """Record successful jobs of one task: run times, and enqueue to finish.

        ``finished_ns`` is when each handler returned, not when its batch is
        flushed, so end-to-end latency leaves out the flusher's gap.
        """
        if not run_s:
            return
        self._child(metrics.JOBS_PROCESSED, queue, task).inc(len(run_s))
        observe_many(self._child(metrics.RUN_SECONDS, queue, task), run_s)
        observe_many(self._child(metrics.END_TO_END_SECONDS, queue),
                     [max(0.0, (f - e) / 1e9) for e, f in zip(enqueued_at_ns, finished_ns,
                                                              strict=True)])

    def duplicates(self, queue: str, n: int) -> None:
        """Record skipped redeliveries of completed jobs."""
        if n:
            self._child(metrics.JOBS_DUPLICATE_SKIPPED, queue).inc(n)

    def cancelled(self, queue: str, n: int) -> None:
        """Record cancelled jobs (skipped, or stopped while running)."""
        if n:
            self._child(metrics.JOBS_CANCELLED, queue).inc(n)

    def failed(self, queue: str, task: str, retried: bool, reason: str) -> None:
        """Record one failure, and where it went."""
        self._child(metrics.JOBS_FAILED, queue, task).inc()
        if retried:
            self._child(metrics.JOBS_RETRIED, queue, task).inc()
        else:
            self._child(metrics.JOBS_DEAD_LETTERED, queue, reason).inc()

    def dead_lettered(self, queue: str, reason: str) -> None:
        """Record bad input sent to the DLQ before any handler ran."""
        self._child(metrics.JOBS_DEAD_LETTERED, queue, reason).inc()

"""Live progress while a load test runs: sent/s, done/s, backlog, running p99."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table


@dataclass(frozen=True, slots=True)
class Progress:
    """One refresh of the live view.

    Attributes:
        elapsed_s: seconds since the schedule started.
        duration_s: length of the schedule.
        offered_per_s: the rate the schedule offers now.
        sent_per_s, done_per_s: over the last few seconds.
        sent, done: totals so far.
        redis_backlog, kafka_backlog: the latest samples.
        p99_ms: end-to-end p99 over the last few seconds (None before any job).
        kills: kill -9s so far.
        phase: ``sending``, ``draining`` or a peer's name.
    """

    elapsed_s: float
    duration_s: float
    offered_per_s: float
    sent_per_s: float
    done_per_s: float
    sent: int
    done: int
    redis_backlog: int
    kafka_backlog: int
    p99_ms: float | None
    kills: int = 0
    phase: str = "sending"


def render(progress: Progress) -> Table:
    """The live view as a one-row table."""
    table = Table(title=f"jobpipe loadtest: {progress.phase}", expand=False)
    for col in ("time", "offer/s", "sent/s", "done/s", "sent", "done",
                "redis", "kafka", "p99 5s", "kills"):
        table.add_column(col, justify="right")
    p99 = "-" if progress.p99_ms is None else f"{progress.p99_ms:,.1f} ms"
    table.add_row(f"{progress.elapsed_s:,.0f}/{progress.duration_s:,.0f} s",
                  f"{progress.offered_per_s:,.0f}", f"{progress.sent_per_s:,.0f}",
                  f"{progress.done_per_s:,.0f}", f"{progress.sent:,}", f"{progress.done:,}",
                  f"{progress.redis_backlog:,}", f"{progress.kafka_backlog:,}", p99,
                  str(progress.kills))
    return table

"""Live progress while a load test runs: sent/s, done/s, backlog, running p99."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group
from rich.table import Table


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    """One process's CPU over the last few seconds.

    Attributes:
        name: ``producer-0``, ``bridge-0``, ``redis``, ``kafka-1``, ``runner`` ...
        cores: CPU seconds per second.
        us_per_job: µs of CPU per job finished (None when none finished).
    """

    name: str
    cores: float
    us_per_job: float | None


@dataclass(frozen=True, slots=True)
class LiveProgress:
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
        cpu: each process's CPU over the same seconds.
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
    cpu: tuple[ProcessCpu, ...] = ()


def render(progress: LiveProgress) -> Group:
    """The live view: a one-row progress table and, once measured, CPU per process."""
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
    if not progress.cpu:
        return Group(table)
    return Group(table, cpu_table(progress.cpu))


def cpu_table(rows: tuple[ProcessCpu, ...]) -> Table:
    """Cores and µs of CPU per job of each process, one column per process."""
    table = Table(title="CPU over the last seconds", expand=False)
    table.add_column("")
    for row in rows:
        table.add_column(row.name, justify="right")
    total = [r for r in rows if r.name != "runner"]
    per_job = [r.us_per_job for r in total if r.us_per_job is not None]
    table.add_column("all but runner", justify="right")
    table.add_row("cores", *(f"{r.cores:.2f}" for r in rows),
                  f"{sum(r.cores for r in total):.2f}")
    table.add_row("µs/job", *("-" if r.us_per_job is None else f"{r.us_per_job:,.0f}"
                              for r in rows), f"{sum(per_job):,.0f}" if per_job else "-")
    return table

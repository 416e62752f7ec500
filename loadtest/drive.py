"""Drive a started run: fold the processes' interval lines into the live view until
the producers finished and the backlog drained (for jobpipe and for peers alike)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from loadtest.backlog_sampler import BacklogSampler
from loadtest.chaos import ChaosMonkey
from loadtest.cpu import CpuSampler, CpuSeries, window_usage
from loadtest.live import LiveProgress, ProcessCpu, render
from loadtest.processes import Fleet
from loadtest.recording import IntervalReader
from loadtest.run_plan import RunPlan
from loadtest.series import Aggregate

REFRESH_S = 0.5
RECENT_S = 5


def child_env() -> dict[str, str]:
    """This environment, with the source root first on ``PYTHONPATH``, so the
    processes a run starts import the very code the runner runs."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


class Watch:
    """Folds interval lines into aggregates and draws the live view."""

    def __init__(self, run_dir: Path, start_s: float, worker_role: str, producer_role: str):
        self.reader = IntervalReader(run_dir)
        self.workers = Aggregate(start_s, frozenset({worker_role}))
        self.producers = Aggregate(start_s, frozenset({producer_role}))
        self.start_s = start_s

    def poll(self) -> None:
        lines = self.reader.read_new()
        self.workers.add(lines)
        self.producers.add(lines)

    def progress(self, plan: RunPlan, backlog: tuple[int, int], kills: int,
                 phase: str, cpu: CpuSeries | None = None) -> LiveProgress:
        elapsed = time.time() - self.start_s
        now = max(0, math.floor(elapsed) - 1)
        first = max(0, now - RECENT_S)
        span = max(1, now - first)
        window = self.workers.window(first, now + 1)
        p99 = window.get_value_at_percentile(99) / 1000 if window.get_total_count() else None
        schedule = plan.schedule()
        offered = schedule.step_at(elapsed).rate_per_s if elapsed < schedule.duration_s else 0.0
        done = self.workers.count_between("done", first, now)
        usage = window_usage(cpu, first, now, done) if cpu is not None else []
        return LiveProgress(elapsed, schedule.duration_s, offered,
                        self.producers.count_between("sent", first, now) / span,
                        done / span,
                        self.producers.counts.get("sent", 0), self.workers.counts.get("done", 0),
                        backlog[0], backlog[1], p99, kills, phase,
                        tuple(ProcessCpu(u.name, u.cores, u.us_per_job) for u in usage))


def drive(plan: RunPlan, fleet: Fleet, watch: Watch, console: Console, *,
          sampler: BacklogSampler | None, chaos: ChaosMonkey | None, phase: str,
          cpu: CpuSampler | None = None) -> bool:
    """Refresh the live view until the producers finished and the backlog drained.

    Returns:
        Whether it drained (False: the drain timeout passed with jobs waiting).
    """
    duration_s = plan.schedule().duration_s
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while True:
            watch.poll()
            backlog = sampler.last() if sampler is not None else (0, 0)
            kills = len(chaos.kills) if chaos is not None else 0
            producing = any(m.pid is not None for m in fleet.of_kind(phase_producer(phase)))
            elapsed = time.time() - watch.start_s
            sent = watch.producers.counts.get("sent", 0)
            done = watch.workers.counts.get("done", 0)
            label = "sending" if producing else "draining"
            cpu_now = cpu.snapshot() if cpu is not None else None
            live.update(render(watch.progress(plan, backlog, kills, f"{phase}: {label}",
                                              cpu_now)))
            if not producing and elapsed > duration_s:
                # A worker killed with -9 loses its last second of counts (never
                # its ledger lines), so with kills an empty backlog decides alone.
                counted = done >= sent or kills > 0
                drained = counted and (sampler is None or backlog == (0, 0))
                if drained or elapsed > duration_s + plan.drain_timeout_s:
                    return drained
            time.sleep(REFRESH_S)


def phase_producer(phase: str) -> str:
    """The producer kind of a phase (``producer`` or ``celery-producer``)."""
    return "producer" if phase == "jobpipe" else f"{phase}-producer"

"""The report's ``cpu`` section: cores and µs of CPU per job, per process. Pure.

For a constant run the window is the send window; for a ramp, each step. The
runner's own process (live view, histogram merging, backlog sampling) and the
recording done inside senders and workers (histograms, counters, ledger
buffers, interval lines) are the load test's instrumentation: they are shown
apart, and the total "all processes" leaves the runner out (the recording
inside senders and workers cannot be separated from their CPU, so it stays in
theirs and is also shown on its own).
"""

from __future__ import annotations

import math
from typing import Any

from loadtest.cpu import CpuSeries, ProcessUsage, total_row, window_usage
from loadtest.recording import INSTRUMENTATION_NS
from loadtest.run_plan import RunPlan
from loadtest.series import Aggregate

RUNNER = "runner"
ORDER = ("producer", "bridge", "worker", "redis", "kafka", RUNNER)


def _sort_key(row: ProcessUsage) -> tuple[int, str]:
    kind = row.name.split("-", 1)[0]
    return (ORDER.index(kind) if kind in ORDER else len(ORDER), row.name)


def window_section(series: CpuSeries, workers: Aggregate, producers: Aggregate,
                   first_s: int, last_s: int) -> dict[str, Any]:
    """Per-process usage, the total and the instrumentation cost over one window."""
    jobs = workers.count_between("done", first_s, last_s)
    rows = sorted(window_usage(series, first_s, last_s, jobs), key=_sort_key)
    total = total_row(rows, frozenset({RUNNER}))
    recording_ns = (workers.count_between(INSTRUMENTATION_NS, first_s, last_s)
                    + producers.count_between(INSTRUMENTATION_NS, first_s, last_s))
    runner = next((r for r in rows if r.name == RUNNER), None)
    return {
        "window_s": [first_s, last_s],
        "jobs": jobs,
        "processes": [r.to_dict() for r in rows],
        "total": total.to_dict(),
        "instrumentation": {
            "recording_us_per_job": round(recording_ns / 1000 / jobs, 2) if jobs else None,
            "recording_cores": round(recording_ns / 1e9 / max(1, last_s - first_s), 3),
            "runner": runner.to_dict() if runner is not None else None,
        },
    }


def cpu_section(plan: RunPlan, series: CpuSeries, workers: Aggregate, producers: Aggregate,
                missing: list[str]) -> dict[str, Any]:
    """The ``cpu`` section: the whole send window, and every ramp step."""
    schedule = plan.schedule()
    section: dict[str, Any] = {
        "run": window_section(series, workers, producers, 0, math.ceil(schedule.duration_s)),
        "note": "µs per job = the process's CPU over the window / jobs finished in it. "
                "Compare runs that kept up (see the verdict): when the pipeline falls "
                "behind, senders do more jobs than finish and their figure is inflated. "
                "Redis's figure includes its AOF-rewrite and RDB-save children, "
                "counted when they finish.",
        "missing": missing,
        "samples": series.to_dict(),
    }
    if plan.is_ramp:
        section["steps"] = [
            {"offered_per_s": step.rate_per_s,
             **window_section(series, workers, producers, math.floor(step.start_s),
                              math.floor(step.end_s))}
            for step in schedule.steps]
    return section


def cpu_rows(window: dict[str, Any]) -> list[list[Any]]:
    """Table rows of one window: process, cores, µs per job (total last)."""
    rows: list[list[Any]] = []
    for proc in window["processes"]:
        label = proc["name"] + (" (load test's own)" if proc["name"] == RUNNER else "")
        rows.append([label, proc["cores"], _us(proc["us_per_job"])])
    total = window["total"]
    rows.append(["all processes (without the runner)", total["cores"],
                 _us(total["us_per_job"])])
    recording = window["instrumentation"]["recording_us_per_job"]
    rows.append(["of which recording in senders + workers",
                 window["instrumentation"]["recording_cores"], _us(recording)])
    return rows


def _us(value: float | None) -> Any:
    return "n/a" if value is None else value

"""Build the report dict from what a run measured. Pure (no Redis, no Kafka).

See :mod:`loadtest.report` for the layout of the dict.
"""

from __future__ import annotations

import math
from typing import Any

from loadtest.aof import aof_section, steps_with_rewrites
from loadtest.backlog_sampler import BacklogSeries
from loadtest.recording import cdf_points, summarize
from loadtest.run_plan import RunPlan
from loadtest.saturation import StepResult, find_saturation
from loadtest.series import Aggregate
from loadtest.verdict import Verdict, ramp_verdict, run_verdict

CDF_POINTS_MAX = 300
CDF_STAGES = ("e2e", "queued", "redis", "kafka", "run")


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= CDF_POINTS_MAX:
        return points
    step = len(points) / CDF_POINTS_MAX
    return [points[math.floor(i * step)] for i in range(CDF_POINTS_MAX)] + [points[-1]]


def series_of(plan: RunPlan, workers: Aggregate, producers: Aggregate,
              backlog: BacklogSeries | None, seconds: int) -> dict[str, Any]:
    """Per-second throughput and percentiles, and the backlog samples."""
    schedule = plan.schedule()
    return {
        "seconds": list(range(seconds)),
        "offered_per_s": [schedule.step_at(s + 0.5).rate_per_s if s < schedule.duration_s
                          else 0.0 for s in range(seconds)],
        "sent_per_s": producers.rate_series("sent", seconds),
        "done_per_s": workers.rate_series("done", seconds),
        "p50_ms": workers.percentile_series(50, seconds),
        "p99_ms": workers.percentile_series(99, seconds),
        "p99.9_ms": workers.percentile_series(99.9, seconds),
        "backlog": backlog.to_dict() if backlog is not None else {},
    }


def step_results(plan: RunPlan, workers: Aggregate,
                 backlog: BacklogSeries | None) -> list[StepResult]:
    """One :class:`StepResult` per ramp step, from the per-second data."""
    out = []
    for step in plan.schedule().steps:
        first, last = math.floor(step.start_s), math.floor(step.end_s)
        done = workers.count_between("done", first, last)
        window = workers.window(first, last)
        p99 = window.get_value_at_percentile(99) / 1000 if window.get_total_count() else math.inf
        samples: list[tuple[float, float]] = []
        if backlog is not None:
            samples = [(t - step.start_s, float(r + k)) for t, r, k in
                       zip(backlog.t_s, backlog.redis, backlog.kafka, strict=True)
                       if step.start_s <= t < step.end_s]
        out.append(StepResult(step.rate_per_s, done / step.duration_s, p99, samples))
    return out


def assemble(plan: RunPlan, *, workers: Aggregate, producers: Aggregate,
             backlog: BacklogSeries | None, ledger: dict[str, Any] | None,
             started_at: str, command: str, kills: list[dict[str, Any]],
             soak: dict[str, Any] | None, seconds: int,
             job_bytes: int) -> dict[str, Any]:
    """The report dict of the jobpipe part of a run."""
    duration_s = plan.schedule().duration_s
    stages = {**producers.stage_summary(), **workers.stage_summary()}
    done_in_window = workers.count_between("done", 0, math.ceil(duration_s))
    report: dict[str, Any] = {
        "started_at": started_at,
        "command": command,
        "config": plan.to_dict(),
        "totals": {
            "offered": plan.schedule().total_jobs,
            "sent": producers.counts.get("sent", 0),
            "rejected": producers.counts.get("rejected", 0),
            "failed_sends": producers.counts.get("failed", 0),
            "done": workers.counts.get("done", 0),
            "throughput_per_s": done_in_window / duration_s,
            "duration_s": duration_s,
            "job_bytes": job_bytes,
        },
        "stages": stages,
        "ledger": ledger or {},
        "series": series_of(plan, workers, producers, backlog, seconds),
        "cdf": {stage: _thin(cdf_points(workers.totals[stage]))
                for stage in CDF_STAGES if stage in workers.totals},
        "chaos": {"kills": kills},
        "notes": notes(plan, "redis" in workers.totals),
    }
    if soak:
        report["soak"] = soak
    lost = int((ledger or {}).get("lost") or 0)
    verdict: Verdict
    if plan.is_ramp:
        saturation = find_saturation(step_results(plan, workers, backlog), plan.p99_target_ms)
        report["saturation"] = saturation.to_dict()
        finite = [v.step.p99_ms for v in saturation.verdicts if math.isfinite(v.step.p99_ms)]
        report["p99_floor_ms"] = min(finite) if finite else None
        verdict = ramp_verdict(saturation, lost)
    else:
        p99 = summarize(workers.totals["e2e"])["p99_ms"] if "e2e" in workers.totals else math.inf
        if math.isfinite(p99):
            report["p99_floor_ms"] = p99
        samples = send_window_backlog(backlog, duration_s)
        verdict = run_verdict(plan.rates[0], report["totals"]["throughput_per_s"], p99,
                              plan.p99_target_ms, samples,
                              int(samples[-1][1]) if samples else None, lost)
    report["verdict"] = verdict.to_dict()
    aof = (aof_section(backlog.t_s, backlog.aof, backlog.produced)
           if backlog is not None else None)
    if aof is not None:
        report["redis_aof"] = aof
        if plan.is_ramp:
            bounds = [(step.start_s, step.end_s) for step in plan.schedule().steps]
            steps = report["saturation"]["steps"]
            for step, n in zip(steps, steps_with_rewrites(bounds, aof["rewrites_s"]),
                               strict=True):
                step["aof_rewrites"] = n
            aof["steps_offered_per_s"] = [s["offered_per_s"] for s in steps if s["aof_rewrites"]]
    return report


def send_window_backlog(backlog: BacklogSeries | None,
                        duration_s: float) -> list[tuple[float, float]]:
    """``(seconds, Redis + Kafka backlog)`` samples taken while jobs were being sent."""
    if backlog is None:
        return []
    return [(t, float(r + k)) for t, r, k in zip(backlog.t_s, backlog.redis, backlog.kafka,
                                                 strict=True) if 0 <= t <= duration_s]


def peer_summary(name: str, workers: Aggregate, duration_s: float, seconds: int,
                 jobpipe: dict[str, Any]) -> dict[str, Any]:
    """A peer's throughput and p99, and the ratios against jobpipe's."""
    e2e = summarize(workers.totals["e2e"]) if "e2e" in workers.totals else summarize_empty()
    throughput = workers.count_between("done", 0, math.ceil(duration_s)) / duration_s
    ours = jobpipe["totals"]["throughput_per_s"]
    our_p99 = jobpipe["stages"].get("e2e", {}).get("p99_ms", 0.0)
    return {
        "throughput_per_s": throughput,
        "done": workers.counts.get("done", 0),
        "p50_ms": e2e["p50_ms"], "p99_ms": e2e["p99_ms"], "max_ms": e2e["max_ms"],
        "throughput_ratio": round(ours / throughput, 2) if throughput else None,
        "p99_ratio": round(e2e["p99_ms"] / our_p99, 2) if our_p99 else None,
        "series": {"seconds": list(range(seconds)),
                   "done_per_s": workers.rate_series("done", seconds)},
        "cdf": _thin(cdf_points(workers.totals["e2e"])) if "e2e" in workers.totals else [],
    }


def summarize_empty() -> dict[str, float]:
    """The summary of no values."""
    from loadtest.recording import new_histogram

    return summarize(new_histogram())


def notes(plan: RunPlan, kafka_split: bool) -> list[str]:
    """How each figure was measured, for the report's reader."""
    out = [
        "Open loop: jobs are sent on a fixed schedule whatever the pipeline does; each job "
        "carries its intended send time and end-to-end latency is measured from it, so a "
        "stalled producer or pipeline shows up as latency (no coordinated omission).",
        "Producers send every job due at once in one enqueue_many call (one Redis round "
        "trip); the 'enqueue call' stage is the duration of one such call.",
        "Histograms are HdrHistograms (1 us - 1 h, 3 significant digits) recorded in every "
        "process, written once a second as encoded interval logs and merged by the runner.",
        "Backlog: Redis = ready + in flight + delayed; Kafka = the workers group's lag "
        "(committed about once a second).",
        "Lost and duplicates come from the ledger: every accepted job id against every "
        "executed (or dead-lettered) one.",
        f"All processes share this machine ({plan.producers} producers, {plan.bridges} "
        f"bridges, {plan.workers} workers, plus Redis and Kafka).",
    ]
    if not kafka_split:
        out.append("The worker's JobContext does not expose the Kafka message timestamp, so "
                   "the wait is reported as one stage, 'queued' (Redis + Kafka); the backlog "
                   "plot shows where jobs waited.")
    return out

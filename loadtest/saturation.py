"""Saturation search: which ramp steps the stack sustained, and the highest one.

Pure. A step is *sustained* when, over that step:

* the backlog stayed bounded: it grew by less than ``max_growth_fraction`` of the
  offered rate per second (a least-squares slope over the step's samples, so
  one noisy sample cannot decide it),
* the throughput kept up: at least ``min_throughput_fraction`` of the offered rate,
* the end-to-end p99 (from the intended send time) stayed under the target.

The saturation point is the highest offered rate of the sustained steps that
come before the first failed one after a sustained one: past a knee a lucky
later step does not count, and failures before any step held are warm-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_GROWTH_FRACTION = 0.05
MIN_THROUGHPUT_FRACTION = 0.95


@dataclass(frozen=True, slots=True)
class StepResult:
    """What was measured during one ramp step.

    Attributes:
        offered_per_s: the step's scheduled rate.
        achieved_per_s: jobs finished per second during the step.
        p99_ms: end-to-end p99 of the jobs finished during the step.
        backlog: ``(seconds since step start, jobs waiting in Redis + Kafka)`` samples.
    """

    offered_per_s: float
    achieved_per_s: float
    p99_ms: float
    backlog: Sequence[tuple[float, float]] = field(default=())


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """A step with the reasons it was (not) sustained.

    Attributes:
        step: the measurements.
        backlog_slope_per_s: fitted backlog growth in jobs per second.
        reasons: why it was not sustained (empty when it was).
    """

    step: StepResult
    backlog_slope_per_s: float
    reasons: tuple[str, ...]

    @property
    def sustained(self) -> bool:
        """No reason against it."""
        return not self.reasons


def backlog_slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of backlog against time (jobs per second); 0 if < 2 samples."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_b = sum(b for _, b in samples) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in samples)
    if var_t == 0:
        return 0.0
    return sum((t - mean_t) * (b - mean_b) for t, b in samples) / var_t


def judge_step(step: StepResult, p99_target_ms: float,
               max_growth_fraction: float = MAX_GROWTH_FRACTION,
               min_throughput_fraction: float = MIN_THROUGHPUT_FRACTION) -> StepVerdict:
    """Decide whether one step was sustained, and say why not."""
    slope = backlog_slope(step.backlog)
    reasons: list[str] = []
    if slope > max_growth_fraction * step.offered_per_s:
        reasons.append(f"backlog grew {slope:,.0f} jobs/s")
    if step.achieved_per_s < min_throughput_fraction * step.offered_per_s:
        reasons.append(f"throughput {step.achieved_per_s:,.0f}/s < "
                       f"{min_throughput_fraction:.0%} of offered")
    if step.p99_ms > p99_target_ms:
        reasons.append(f"p99 {step.p99_ms:,.1f} ms > target {p99_target_ms:g} ms")
    return StepVerdict(step, slope, tuple(reasons))


@dataclass(frozen=True, slots=True)
class Saturation:
    """The outcome of a ramp.

    Attributes:
        verdicts: every step, in ramp order.
        sustained_per_s: highest offered rate sustained before the first failure
            (``None`` when even the first step failed).
        knee_index: index of the first failed step (``None`` if all held).
    """

    verdicts: tuple[StepVerdict, ...]
    sustained_per_s: float | None
    knee_index: int | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "sustained_per_s": self.sustained_per_s,
            "knee_index": self.knee_index,
            "steps": [{"offered_per_s": v.step.offered_per_s,
                       "achieved_per_s": v.step.achieved_per_s,
                       "p99_ms": v.step.p99_ms,
                       "backlog_slope_per_s": v.backlog_slope_per_s,
                       "sustained": v.sustained, "reasons": list(v.reasons)}
                      for v in self.verdicts],
        }


def find_saturation(steps: Sequence[StepResult], p99_target_ms: float) -> Saturation:
    """Judge every step and find the highest sustained rate below the knee."""
    verdicts = tuple(judge_step(s, p99_target_ms) for s in steps)
    # Failed steps before the first sustained one are warm-up (connections,
    # first fetches, JIT-less Python caches), not a knee.
    first_ok = next((i for i, v in enumerate(verdicts) if v.sustained), len(verdicts))
    knee = next((i for i, v in enumerate(verdicts) if not v.sustained and i > first_ok), None)
    if first_ok == len(verdicts):
        knee = 0 if verdicts else None
    held = verdicts if knee is None else verdicts[:knee]
    best = max((v.step.offered_per_s for v in held if v.sustained), default=None)
    return Saturation(verdicts, best, knee)


def should_stop_ramp(verdicts: Sequence[StepVerdict], failures_in_a_row: int = 2) -> bool:
    """Stop ramping once the last ``failures_in_a_row`` steps all failed."""
    tail = verdicts[-failures_in_a_row:]
    return len(tail) == failures_in_a_row and not any(v.sustained for v in tail)

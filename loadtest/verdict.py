"""Did the pipeline keep up? One plain sentence for the top of every report. Pure.

A constant-rate run is judged as one ramp step (:func:`loadtest.saturation.judge_step`:
backlog flat, throughput at least 95% of offered, end-to-end p99 under the
target), so a run and a ramp step mean the same by "sustained". When it was not
sustained because jobs piled up, the rate the pipeline did manage over the send
window is where it saturated; a run that kept the rate but missed only the
latency target says that instead. Jobs lost always come first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.saturation import Saturation, StepResult, judge_step


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome in one line.

    Attributes:
        kept_up: sustained (and nothing lost).
        text: the sentence, e.g. ``kept up: 9,990 of 10,000 jobs/s ...`` or
            ``not sustained: saturated near 9,600 jobs/s ...``.
    """

    kept_up: bool
    text: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"kept_up": self.kept_up, "text": self.text}


def _lost_prefix(lost: int) -> str:
    return f"{lost:,} jobs LOST; " if lost else ""


def run_verdict(offered_per_s: float, achieved_per_s: float, p99_ms: float,
                p99_target_ms: float, backlog: Sequence[tuple[float, float]],
                backlog_at_end: int | None, lost: int = 0) -> Verdict:
    """The verdict of a constant-rate run.

    Args:
        offered_per_s: the rate asked for.
        achieved_per_s: jobs done per second over the send window.
        p99_ms: end-to-end p99 of the run.
        p99_target_ms: the latency target.
        backlog: ``(seconds, jobs waiting)`` samples over the send window.
        backlog_at_end: jobs waiting when sending ended (None if not sampled).
        lost: jobs accepted and never run (from the ledger).
    """
    step = judge_step(StepResult(offered_per_s, achieved_per_s, p99_ms, backlog),
                      p99_target_ms)
    left = "n/a" if backlog_at_end is None else f"{backlog_at_end:,}"
    figures = (f"{achieved_per_s:,.0f} of {offered_per_s:,.0f} jobs/s offered, backlog "
               f"{left} when sending ended, e2e p99 {p99_ms:,.1f} ms (target "
               f"{p99_target_ms:g} ms)")
    if step.sustained:
        return Verdict(not lost, f"{_lost_prefix(lost)}kept up: {figures}")
    piled_up = any(r.startswith(("backlog", "throughput")) for r in step.reasons)
    if piled_up:
        head = f"not sustained: saturated near {achieved_per_s:,.0f} jobs/s"
    else:
        head = "not sustained: kept the rate but missed the latency target"
    return Verdict(False, f"{_lost_prefix(lost)}{head} ({figures})")


def ramp_verdict(saturation: Saturation, lost: int = 0) -> Verdict:
    """The verdict of a ramp: the highest rate held, and where it saturated."""
    held = saturation.sustained_per_s
    knee = saturation.knee_index
    if knee is None:
        top = saturation.verdicts[-1].step.offered_per_s if saturation.verdicts else 0.0
        return Verdict(not lost, f"{_lost_prefix(lost)}kept up at every step, up to "
                                 f"{top:,.0f} jobs/s: no saturation within the ramp")
    failed = saturation.verdicts[knee]
    # Past the knee the most the pipeline finished in any step is its capacity;
    # the knee step alone can be a warm-up (the first step of a ramp).
    capacity = max(v.step.achieved_per_s for v in saturation.verdicts[knee:])
    near = f"saturated near {capacity:,.0f} jobs/s " \
           f"(first missed at {failed.step.offered_per_s:,.0f} offered: " \
           f"{'; '.join(failed.reasons)})"
    if held is None:
        return Verdict(False, f"{_lost_prefix(lost)}not sustained at any step: {near}")
    return Verdict(False, f"{_lost_prefix(lost)}sustained up to {held:,.0f} jobs/s; {near}")

"""The open-loop send schedule: when each job of a run is MEANT to be sent.

An open-loop generator sends on the clock, never waiting for the system under
test; if a producer falls behind it sends the late jobs at once, and each job
still carries its intended send time, so the latency measured from that time
includes the wait a real client would have seen (no coordinated omission,
Gil Tene's term). This module is pure: it turns ``--rate`` or ``--ramp`` into
steps, and a job index into its intended offset from the start.

Job ``i`` of a step with rate ``r`` starting at ``s`` is due at ``s + k / r``
where ``k`` is its index within the step. Producer ``p`` of ``P`` sends the
indices ``p, p + P, p + 2P ...``, so P producers together keep the rate.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from jobpipe.errors import ConfigError

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Step:
    """One constant-rate stretch of a run.

    Attributes:
        rate_per_s: jobs per second offered during the step.
        start_s: offset of the step from the start of the run.
        duration_s: how long it lasts.
    """

    rate_per_s: float
    start_s: float
    duration_s: float

    @property
    def jobs(self) -> int:
        """Jobs sent during the step."""
        return math.floor(self.rate_per_s * self.duration_s)

    @property
    def end_s(self) -> float:
        """Offset of the step's end from the start of the run."""
        return self.start_s + self.duration_s


def parse_ramp(text: str) -> list[float]:
    """``FROM:TO:STEP`` to the list of rates, ``TO`` included when reached.

    Raises:
        ConfigError: the text is not three positive numbers with FROM <= TO.
    """
    parts = text.split(":")
    try:
        low, high, step = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--ramp: {text!r} is not FROM:TO:STEP (e.g. 2000:20000:2000)") from None
    if low <= 0 or step <= 0 or high < low:
        raise ConfigError(f"--ramp: {text!r} needs 0 < FROM <= TO and STEP > 0")
    count = math.floor((high - low) / step + 1e-9) + 1
    return [low + i * step for i in range(count)]


@dataclass(frozen=True, slots=True)
class Schedule:
    """All steps of a run, back to back.

    Attributes:
        steps: the constant-rate stretches, in order, without gaps.
    """

    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigError("a load schedule needs at least one step")
        for step in self.steps:
            if step.rate_per_s <= 0 or step.duration_s <= 0:
                raise ConfigError("every rate and duration must be > 0")

    @classmethod
    def constant(cls, rate_per_s: float, duration_s: float) -> Schedule:
        """One rate for the whole run."""
        return cls((Step(rate_per_s, 0.0, duration_s),))

    @classmethod
    def ramp(cls, rates: list[float], step_s: float) -> Schedule:
        """One step of ``step_s`` seconds per rate."""
        return cls(tuple(Step(r, i * step_s, step_s) for i, r in enumerate(rates)))

    @property
    def duration_s(self) -> float:
        """Length of the whole run."""
        return self.steps[-1].end_s

    @property
    def total_jobs(self) -> int:
        """Jobs sent over the whole run."""
        return sum(s.jobs for s in self.steps)

    def _firsts(self) -> list[int]:
        firsts, total = [], 0
        for step in self.steps:
            firsts.append(total)
            total += step.jobs
        return firsts

    def offset_ns(self, index: int) -> int:
        """Intended send time of job ``index``, in ns from the start of the run."""
        if index < 0 or index >= self.total_jobs:
            raise IndexError(f"job {index} is outside the schedule")
        firsts = self._firsts()
        at = bisect.bisect_right(firsts, index) - 1
        step = self.steps[at]
        return round((step.start_s + (index - firsts[at]) / step.rate_per_s) * NS_PER_S)

    def offsets_ns(self, indices: list[int]) -> list[int]:
        """:meth:`offset_ns` of many jobs, the step table built once per call, not per job."""
        total = self.total_jobs
        firsts = self._firsts()
        out = []
        for index in indices:
            if index < 0 or index >= total:
                raise IndexError(f"job {index} is outside the schedule")
            at = bisect.bisect_right(firsts, index) - 1
            step = self.steps[at]
            out.append(round((step.start_s + (index - firsts[at]) / step.rate_per_s)
                             * NS_PER_S))
        return out

    def due(self, elapsed_s: float) -> int:
        """How many jobs (all producers together) are due by ``elapsed_s``."""
        done = 0
        for step in self.steps:
            if elapsed_s >= step.end_s:
                done += step.jobs
                continue
            if elapsed_s > step.start_s:
                done += min(step.jobs,
                            math.floor((elapsed_s - step.start_s) * step.rate_per_s) + 1)
            break
        return done

    def step_at(self, elapsed_s: float) -> Step:
        """The step running at ``elapsed_s`` (the last one after the end)."""
        for step in self.steps:
            if elapsed_s < step.end_s:
                return step
        return self.steps[-1]


class ProducerShare:
    """The slice of a schedule one of ``count`` producers sends: ``p, p+P, ...``.

    Offsets of the shared schedule are precomputed lazily, a step at a time, so
    a producer's loop costs O(1) per job.
    """

    def __init__(self, schedule: Schedule, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ConfigError(f"producer index {index} is not in 0..{count - 1}")
        self.schedule = schedule
        self.index = index
        self.count = count
        self.next_job = index  # global index of this producer's next job

    def due_jobs(self, elapsed_s: float, limit: int) -> list[int]:
        """Global indices of this producer's jobs due by ``elapsed_s`` (at most ``limit``)."""
        due = self.schedule.due(elapsed_s)
        out: list[int] = []
        while self.next_job < due and len(out) < limit:
            out.append(self.next_job)
            self.next_job += self.count
        return out

    @property
    def finished(self) -> bool:
        """Every job of this share was handed out."""
        return self.next_job >= self.schedule.total_jobs

"""Turn interval lines from every process into totals and per-second series.

Pure (no Redis, no Kafka): the input is what :mod:`loadtest.recording` wrote.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtest.recording import decode_histogram, new_histogram, summarize


@dataclass
class Aggregate:
    """Running totals and per-second buckets of one group of roles.

    Attributes:
        start_s: wall-clock start of the run (buckets are seconds since it).
        roles: which roles' lines count (``None`` = all).
    """

    start_s: float
    roles: frozenset[str] | None = None
    totals: dict[str, HdrHistogram] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_second_counts: dict[int, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    per_second_e2e: dict[int, HdrHistogram] = field(default_factory=dict)

    def add(self, lines: Iterable[dict[str, Any]]) -> None:
        """Fold interval lines in."""
        for line in lines:
            if self.roles is not None and line.get("role") not in self.roles:
                continue
            second = max(0, math.ceil(float(line["t"]) - self.start_s) - 1)
            for name, n in line.get("counts", {}).items():
                self.counts[name] += int(n)
                self.per_second_counts[second][name] += int(n)
            for stage, encoded in line.get("h", {}).items():
                hist = decode_histogram(encoded)
                total = self.totals.get(stage)
                if total is None:
                    total = self.totals[stage] = new_histogram()
                total.add(hist)
                if stage == "e2e":
                    bucket = self.per_second_e2e.get(second)
                    if bucket is None:
                        bucket = self.per_second_e2e[second] = new_histogram()
                    bucket.add(hist)

    def stage_summary(self) -> dict[str, dict[str, float]]:
        """Count, mean, percentiles and max (ms) of every stage recorded."""
        return {stage: summarize(hist) for stage, hist in self.totals.items()}

    def rate_series(self, name: str, seconds: int) -> list[float]:
        """Per-second counts of ``name`` for seconds ``0 .. seconds-1``."""
        return [float(self.per_second_counts.get(s, {}).get(name, 0)) for s in range(seconds)]

    def percentile_series(self, pct: float, seconds: int) -> list[float | None]:
        """Per-second e2e percentile (ms), ``None`` where nothing finished."""
        out: list[float | None] = []
        for s in range(seconds):
            hist = self.per_second_e2e.get(s)
            out.append(hist.get_value_at_percentile(pct) / 1000
                       if hist is not None and hist.get_total_count() else None)
        return out

    def window(self, first_s: int, last_s: int) -> HdrHistogram:
        """e2e values that finished in seconds ``first_s .. last_s - 1``."""
        hist = new_histogram()
        for s in range(first_s, last_s):
            bucket = self.per_second_e2e.get(s)
            if bucket is not None:
                hist.add(bucket)
        return hist

    def count_between(self, name: str, first_s: int, last_s: int) -> int:
        """Sum of counter ``name`` over seconds ``first_s .. last_s - 1``."""
        return sum(self.per_second_counts.get(s, {}).get(name, 0)
                   for s in range(first_s, last_s))

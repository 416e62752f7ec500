"""End-to-end latency per queue, read from the workers' Prometheus histograms.

Workers measure enqueue-to-completion per job in
``jobpipe_job_end_to_end_seconds`` (per queue) and serve it on
``--metrics-port``. The dashboard scrapes the addresses it is given, adds the
workers' buckets together and estimates p50 and p99 of the jobs completed in
the last minute (since the workers started, until it has scraped for a
minute), interpolating inside a bucket as Prometheus' ``histogram_quantile``
does: an estimate as fine as the buckets.
"""

from __future__ import annotations

import math
import time
import urllib.request
from collections import deque
from collections.abc import Sequence

from prometheus_client.parser import text_string_to_metric_families

METRIC = "jobpipe_job_end_to_end_seconds"
SCRAPE_TIMEOUT_S = 5.0
WINDOW_S = 60.0

Buckets = dict[str, dict[float, float]]  # queue -> upper bound -> cumulative count


def parse(text: str) -> Buckets:
    """The end-to-end buckets of one ``/metrics`` page, per queue."""
    out: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            if sample.name == METRIC + "_bucket":
                queue = sample.labels.get("queue", "")
                bound = float(sample.labels["le"])
                out.setdefault(queue, {})[bound] = sample.value
    return out


def merge(pages: Sequence[Buckets]) -> Buckets:
    """The buckets of several workers added together."""
    out: Buckets = {}
    for page in pages:
        for queue, buckets in page.items():
            mine = out.setdefault(queue, {})
            for bound, count in buckets.items():
                mine[bound] = mine.get(bound, 0.0) + count
    return out


def since(now: Buckets, before: Buckets) -> Buckets:
    """What was counted between two scrapes; a queue whose counts went back (a
    worker restarted) counts from zero."""
    out: Buckets = {}
    for queue, buckets in now.items():
        old = before.get(queue, {})
        diff = {bound: count - old.get(bound, 0.0) for bound, count in buckets.items()}
        out[queue] = buckets if any(v < 0 for v in diff.values()) else diff
    return out


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of cumulative ``buckets``; ``None`` when empty.

    Linear inside the bucket the rank falls in; the lowest bucket starts at 0; a
    rank in the ``+Inf`` bucket answers the highest finite bound.
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count -
                                                                                 lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


class LatencyReader:
    """Scrapes the workers' ``/metrics`` addresses and keeps a minute of scrapes."""

    def __init__(self, urls: Sequence[str], window_s: float = WINDOW_S) -> None:
        self.urls = list(urls)
        self.window_s = window_s
        self._scrapes: deque[tuple[float, Buckets]] = deque()

    def read(self) -> tuple[dict[str, dict[str, float | None]], list[str]]:
        """p50 and p99 (seconds) and the job count per queue over the window, and
        one line per address that did not answer."""
        pages: list[Buckets] = []
        errors: list[str] = []
        for url in self.urls:
            try:
                with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                    pages.append(parse(response.read().decode()))
            except (OSError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        now, at = merge(pages), time.monotonic()
        # The baseline is the newest scrape at least a window old (else the oldest).
        while len(self._scrapes) > 1 and self._scrapes[1][0] <= at - self.window_s:
            self._scrapes.popleft()
        window = since(now, self._scrapes[0][1] if self._scrapes else {})
        self._scrapes.append((at, now))
        out: dict[str, dict[str, float | None]] = {}
        for queue, buckets in window.items():
            jobs = max(buckets.values(), default=0.0)
            out[queue] = {"p50_s": quantile(buckets, 0.5), "p99_s": quantile(buckets, 0.99),
                          "jobs": jobs}
        return out, errors

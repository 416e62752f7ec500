"""Latency recording: HdrHistograms per stage, written as interval logs.

Every process of a run (producers, workers, peers) keeps one histogram per
stage and, once a second, appends a JSON line to its own file in the run's
``intervals/`` folder: counters of the interval and each stage's histogram in
HdrHistogram's compressed, base64 encoding (the same idea as HdrHistogram's
``HistogramLogWriter``). The runner tails those files for the live view and,
at the end, merges every interval of every process into one histogram per
stage. A process killed with -9 loses at most its last interval.

Values are recorded in microseconds, 1 us to 1 hour, 3 significant digits.
Stages (``STAGES``):

    send_lag   intended send time -> the producer called enqueue (its own lateness)
    enqueue    duration of one enqueue call (a batch: see the report)
    redis      enqueued -> the bridge produced it to Kafka (Kafka message timestamp)
    kafka      produced to Kafka -> the handler started
    queued     enqueued -> the handler started (redis + kafka, always measured)
    run        the handler itself
    e2e        intended send time -> the handler finished
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

STAGES = ("send_lag", "enqueue", "redis", "kafka", "queued", "run", "e2e")
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
INTERVALS_DIR = "intervals"
PERCENTILES = (50.0, 95.0, 99.0, 99.9)
# Counter: CPU ns this process spent recording (histograms, counters, ledger, logs).
INSTRUMENTATION_NS = "instr_ns"
# Recording is timed on one call in this many and scaled up: a CPU clock read
# costs about as much as a histogram update.
INSTRUMENTATION_SAMPLE_EVERY = 16
# One finished job, in ns since the epoch: enqueued, handler started, handler
# finished, its Kafka timestamp (ms; 0 when unknown) and its intended send time
# (0 when unknown).
JobTimes = tuple[int, int, int, int, int]
_JOB_FIELDS = 5
# Microsecond values: a list of ints, or a numpy int64 array (numpy is imported
# late, see histogram_of).
ValuesUs = Any


def new_histogram() -> HdrHistogram:
    """An empty histogram in microseconds with the run-wide range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def decode_histogram(encoded: str) -> HdrHistogram:
    """A histogram from its base64 compressed encoding."""
    return HdrHistogram.decode(encoded.encode())


def merge_encoded(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every value of all the encoded ones."""
    total = new_histogram()
    for item in encoded:
        total.add(decode_histogram(item))
    return total


def summarize(hist: HdrHistogram) -> dict[str, float]:
    """Count, mean, p50/p95/p99/p99.9 and max of a histogram, in milliseconds."""
    count = hist.get_total_count()
    out: dict[str, float] = {"count": float(count)}
    if not count:
        return {**out, "mean_ms": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0,
                "p99.9_ms": 0.0, "max_ms": 0.0}
    out["mean_ms"] = hist.get_mean_value() / 1000
    for pct in PERCENTILES:
        out[f"p{pct:g}_ms"] = hist.get_value_at_percentile(pct) / 1000
    out["max_ms"] = hist.get_max_value() / 1000
    return out


def cdf_points(hist: HdrHistogram) -> list[tuple[float, float]]:
    """(latency ms, fraction at or below) along the histogram, for a CDF plot."""
    total = hist.get_total_count()
    if not total:
        return []
    points: list[tuple[float, float]] = []
    for item in hist.get_recorded_iterator():
        points.append((item.value_iterated_to / 1000, item.total_count_to_this_value / total))
    return points


class StageRecorder:
    """This process's values and counters for the current interval. Thread-safe.

    Values are appended to plain lists and folded into HdrHistograms once per
    interval (equal values counted once): ``record_value`` is pure Python and
    costs over a microsecond, which per job and per stage was a large part of
    a worker's CPU at high rates.

    Args:
        role: ``producer``, ``worker``, ``celery`` ... (kept in every line).
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self._lock = threading.Lock()
        self._values: dict[str, list[int]] = {}
        self._counts: dict[str, int] = {}
        self._jobs: list[int] = []  # JobTimes, flat: one numpy conversion per interval

    def record_ns(self, stage: str, value_ns: int, count: int = 1) -> None:
        """Record one duration, ``count`` times (negative clock skew is clamped to 1 us)."""
        value_us = value_ns // 1000
        with self._lock:
            values = self._values.get(stage)
            if values is None:
                values = self._values[stage] = []
            if count == 1:
                values.append(value_us)
            else:
                values.extend([value_us] * count)

    def record_many_ns(self, stage: str, values_ns: Iterable[int]) -> None:
        """Record many durations of one stage."""
        with self._lock:
            values = self._values.get(stage)
            if values is None:
                values = self._values[stage] = []
            values.extend(v // 1000 for v in values_ns)

    def record_job_ns(self, times: JobTimes) -> None:
        """One finished job of a worker: its stages (``queued``, ``run``, and
        ``redis``, ``kafka`` and ``e2e`` where known) and its ``done`` count.

        One append under the lock; the stages are worked out per interval, for
        all the interval's jobs at once (:func:`job_stages_us`). Per job they
        took a worker ~5 us, a sixth of its loop at saturation.
        """
        with self._lock:
            self._jobs.extend(times)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the interval counter ``name`` (``sent``, ``done`` ...)."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def snapshot(self, end_s: float | None = None) -> dict[str, Any] | None:
        """The interval so far as a JSON-ready line, then start a new interval.

        Args:
            end_s: wall-clock end of the interval (default: now).

        Returns:
            ``None`` when nothing was recorded in the interval.
        """
        with self._lock:
            values, self._values = self._values, {}
            counts, self._counts = self._counts, {}
            jobs, self._jobs = self._jobs, []
        stages: dict[str, ValuesUs] = {stage: vals for stage, vals in values.items() if vals}
        if jobs:
            counts["done"] = counts.get("done", 0) + len(jobs) // _JOB_FIELDS
            for stage, stage_us in job_stages_us(jobs).items():
                stages[stage] = _joined(stages.get(stage), stage_us)
        if not counts and not stages:
            return None
        hists = {stage: histogram_of(vals).encode().decode() for stage, vals in stages.items()}
        return {"t": time.time() if end_s is None else end_s, "pid": os.getpid(), "role": self.role,
                "counts": counts, "h": hists}


def job_stages_us(jobs: list[int]) -> dict[str, ValuesUs]:
    """The stage values (us, numpy arrays) of many jobs' :data:`JobTimes`, laid
    end to end in one flat list, worked out in bulk."""
    import numpy as np  # imported late: see histogram_of

    times = np.array(jobs, dtype=np.int64).reshape(-1, _JOB_FIELDS)
    enqueued, started, finished, kafka_ms, intended = times.T
    kafka = kafka_ms > 0
    kafka_ns = kafka_ms[kafka] * 1_000_000
    sent = intended > 0
    stages = {"queued": started - enqueued, "run": finished - started,
              "redis": kafka_ns - enqueued[kafka], "kafka": started[kafka] - kafka_ns,
              "e2e": finished[sent] - intended[sent]}
    return {stage: values_ns // 1000 for stage, values_ns in stages.items() if len(values_ns)}


def _joined(values_us: list[int] | None, more_us: ValuesUs) -> ValuesUs:
    if not values_us:
        return more_us
    import numpy as np

    return np.concatenate([np.asarray(values_us, dtype=np.int64), more_us])


def histogram_of(values_us: ValuesUs) -> HdrHistogram:
    """A histogram of microsecond values, each clamped to the run-wide range.

    The counter of each value is computed with numpy exactly as
    ``HdrHistogram.record_value`` computes it (unit 1 us, 2,048 sub-buckets:
    bucket = bit length of ``v | 2047`` - 11, sub-bucket = ``v >> bucket``)
    and added to the histogram's counts array in one ``bincount``:
    ``record_value`` is pure Python, well over a microsecond a value, and the
    recording of a busy second took tens of milliseconds.
    """
    # numpy is imported here, not with the module: the runner and the reports
    # import this module too. Senders and workers import it when their interval
    # log starts (IntervalLog), before the run.
    import numpy as np

    hist = new_histogram()
    if len(values_us) == 0:
        return hist
    values = np.clip(np.asarray(values_us, dtype=np.int64), LOWEST_US, HIGHEST_US)
    bits = np.frexp((values | hist.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bits - (hist.sub_bucket_half_count_magnitude + 1)
    index = (((bucket + 1) << hist.sub_bucket_half_count_magnitude)
             + (values >> bucket) - hist.sub_bucket_half_count)
    counts = np.ctypeslib.as_array(hist.counts)
    counts += np.bincount(index, minlength=hist.counts_len).astype(counts.dtype)
    hist.total_count = len(values)
    hist.min_value = int(values.min())
    hist.max_value = int(values.max())
    return hist


class IntervalLog:
    """Writes a recorder's snapshot to ``<run_dir>/intervals/<role>-<pid>.jsonl`` each interval.

    Args:
        run_dir: the run's report folder.
        recorder: what to snapshot.
        interval_s: seconds between lines.
    """

    def __init__(self, run_dir: str | Path, recorder: StageRecorder,
                 interval_s: float = 1.0) -> None:
        # numpy now, before the run: imported by the first snapshot, its import
        # (~0.1 s, holding the GIL) stalled every sender and worker one second
        # into the run (docs/benchmarks.md). Not on the writer's thread either: a
        # worker forked by ``--processes`` mid-import would hang on numpy's lock.
        import numpy  # noqa: F401

        folder = Path(run_dir) / INTERVALS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{recorder.role}-{os.getpid()}.jsonl"
        self.recorder = recorder
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"intervals-{recorder.role}")
        self._thread.start()

    def write_now(self, end_s: float | None = None) -> None:
        """Append the current interval (if anything happened in it)."""
        line = self.recorder.snapshot(end_s)
        if line is not None:
            with self.path.open("ab") as fh:
                fh.write(orjson.dumps(line) + b"\n")

    def close(self) -> None:
        """Stop the writer thread and write the last interval."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.write_now()

    def _loop(self) -> None:
        # Intervals end on whole multiples of interval_s of the wall clock, in
        # every process alike, so the runner's per-second buckets line up.
        while True:
            boundary = (math.floor(time.time() / self.interval_s) + 1) * self.interval_s
            if self._stop.wait(max(0.0, boundary - time.time())):
                return
            cpu_ns = time.thread_time_ns()
            self.write_now(boundary)
            # Encoding and writing is the load test's own cost: the next line says it.
            self.recorder.count(INSTRUMENTATION_NS, time.thread_time_ns() - cpu_ns)


class IntervalReader:
    """Reads the interval logs of a run incrementally (only new whole lines each call)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.folder = Path(run_dir) / INTERVALS_DIR
        self._offsets: dict[Path, int] = {}

    def read_new(self) -> list[dict[str, Any]]:
        """Lines appended since the last call, from every process's file."""
        if not self.folder.exists():
            return []
        lines: list[dict[str, Any]] = []
        for path in sorted(self.folder.glob("*.jsonl")):
            start = self._offsets.get(path, 0)
            with path.open("rb") as fh:
                fh.seek(start)
                data = fh.read()
            end = data.rfind(b"\n") + 1  # a torn last line waits for its newline
            self._offsets[path] = start + end
            for raw in data[:end].splitlines():
                if raw:
                    lines.append(orjson.loads(raw))
        return lines


def read_all_intervals(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every whole interval line of a run, from every process."""
    return IntervalReader(run_dir).read_new()

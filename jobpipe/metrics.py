"""Prometheus metrics of every stage, defined in one place.

Names follow Prometheus conventions: ``_total`` counters, ``_seconds``
histograms, base units. Each metric object below is created *lazily*, on its
first use (``metrics.JOBS_PROCESSED.labels(...)``), not when this module is
imported. That matters for ``--processes N``: prometheus_client decides once,
when a metric is constructed, whether its values live in process memory or in
``$PROMETHEUS_MULTIPROC_DIR`` files that a parent can merge. So:

* a single process calls :func:`serve_metrics` and is done;
* a parent that forks N children calls :func:`prepare_multiprocess` **before
  forking** (it sets the directory, wipes stale files and re-homes any metric
  already created), calls :func:`serve_metrics` (which then merges every
  process's files), and calls :func:`mark_process_dead` when a child exits so
  its live gauges stop counting.

``from jobpipe.metrics import JOBS_PROCESSED`` is safe at module level: what is
imported is a proxy that builds the real metric on first attribute access.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HOST_ENV = "JOBPIPE_METRICS_HOST"
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_LOCK = threading.Lock()


class _LazyMetric:
    """Stands in for a metric until first use, then forwards every attribute."""

    __slots__ = ("_factory", "_metric", "name")

    def __init__(self, name: str, factory: Callable[[], Any]) -> None:
        self.name = name
        self._factory = factory
        self._metric: Any = None

    def resolve(self) -> Any:
        """The real metric, created (in the current mode) on first call."""
        metric = self._metric
        if metric is None:
            with _LOCK:
                if self._metric is None:
                    _sync_value_class()
                    self._metric = self._factory()
                metric = self._metric
        return metric

    def reset(self) -> None:
        """Forget the real metric (unregistered) so the next use re-creates it."""
        with _LOCK:
            if self._metric is not None:
                REGISTRY.unregister(self._metric)
                self._metric = None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.resolve(), attr)

    def __repr__(self) -> str:
        return f"<lazy metric {self.name}>"


_ALL: list[_LazyMetric] = []


class LabelChildren:
    """A stage's label children, each looked up once: ``labels()`` takes a lock,
    checks the values and builds a key on every call (~10 µs a call in the
    bridge under cProfile, five calls a batch), while the children never change
    for the life of a stage."""

    def __init__(self) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}

    def __call__(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, from the cache after the first call."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


def _lazy(kind: type[Any], name: str, doc: str, labels: list[str], **kwargs: Any) -> Any:
    proxy = _LazyMetric(name, lambda: kind(name, doc, labels, **kwargs))
    _ALL.append(proxy)
    return proxy


def _counter(name: str, doc: str, labels: list[str]) -> Counter:
    return cast(Counter, _lazy(Counter, name, doc, labels))


def _gauge(name: str, doc: str, labels: list[str], mode: str) -> Gauge:
    return cast(Gauge, _lazy(Gauge, name, doc, labels, multiprocess_mode=mode))


def _histogram(name: str, doc: str, labels: list[str],
               buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> Histogram:
    return cast(Histogram, _lazy(Histogram, name, doc, labels, buckets=buckets))


# --- ingest -------------------------------------------------------------------------
JOBS_ENQUEUED = _counter("jobpipe_jobs_enqueued_total", "Jobs accepted into Redis.", ["queue"])
ENQUEUE_REJECTED = _counter("jobpipe_enqueue_rejected_total",
                            "Enqueues refused (bad input, full, unavailable, unreplicated, "
                            "refused).",
                            ["queue", "reason"])
ENQUEUE_SECONDS = _histogram("jobpipe_enqueue_seconds", "Time of one enqueue call.", ["queue"])

# --- scheduler (ingest) ------------------------------------------------------------
# Counted by each scheduler for the passes it ran: schedulers whose passes race
# each count the same fire times (the job itself is enqueued once), so take the
# max over schedulers, not the sum.
SCHEDULE_FIRES = _counter("jobpipe_schedule_fires_total",
                          "Fire times this scheduler enqueued.", ["schedule"])
SCHEDULE_MISSED = _counter("jobpipe_schedule_missed_total",
                           "Fire times missed by more than the grace period (no scheduler ran).",
                           ["schedule"])
SCHEDULE_SKIPPED = _counter("jobpipe_schedule_skipped_total",
                            "Missed fire times not run, as the misfire policy says.",
                            ["schedule"])

# --- bridge -------------------------------------------------------------------------
JOBS_BRIDGED = _counter("jobpipe_jobs_bridged_total", "Jobs acknowledged by Kafka.", ["queue"])
BRIDGE_BATCH_SIZE = _histogram("jobpipe_bridge_batch_size", "Jobs per batch taken from Redis.",
                               ["queue"], buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000))
PRODUCE_SECONDS = _histogram("jobpipe_bridge_produce_seconds",
                             "From produce() to the last delivery report of a batch.", ["queue"])
BRIDGE_INFLIGHT = _gauge("jobpipe_bridge_inflight_jobs", "Jobs taken and not yet acked by Kafka.",
                         ["queue"], mode="livesum")
BRIDGE_DEAD = _counter("jobpipe_bridge_dead_total", "Jobs Kafka refused for good.",
                       ["queue", "reason"])
JOBS_PROMOTED = _counter("jobpipe_jobs_promoted_total", "Delayed jobs moved to ready.", ["queue"])
REDIS_BACKLOG = _gauge("jobpipe_redis_backlog_jobs", "Jobs waiting in Redis.",
                       ["queue", "state"], mode="max")

# --- consumers ----------------------------------------------------------------------
JOBS_PROCESSED = _counter("jobpipe_jobs_processed_total", "Jobs whose handler succeeded.",
                          ["queue", "task"])
JOBS_FAILED = _counter("jobpipe_jobs_failed_total", "Handler failures.", ["queue", "task"])
JOBS_RETRIED = _counter("jobpipe_jobs_retried_total", "Jobs sent to a retry tier.",
                        ["queue", "task"])
JOBS_DEAD_LETTERED = _counter("jobpipe_jobs_dead_lettered_total", "Jobs sent to the DLQ.",
                              ["queue", "reason"])
JOBS_DUPLICATE_SKIPPED = _counter("jobpipe_jobs_duplicate_skipped_total",
                                  "Redeliveries of completed jobs, skipped.", ["queue"])
JOBS_CANCELLED = _counter("jobpipe_jobs_cancelled_total",
                          "Jobs cancelled: skipped before their start, or stopped running.",
                          ["queue"])
JOBS_TIMED_OUT = _counter("jobpipe_jobs_timed_out_total",
                          "Jobs over their time limit (async ones are cancelled and retried).",
                          ["queue", "task"])
RUN_SECONDS = _histogram("jobpipe_job_run_seconds", "Handler run time.", ["queue", "task"])
END_TO_END_SECONDS = _histogram("jobpipe_job_end_to_end_seconds",
                                "From enqueue to handler completion.", ["queue"])
CONSUMER_LAG = _gauge("jobpipe_consumer_lag_messages", "Messages behind the end of each topic.",
                      ["topic"], mode="max")
CONSUMERS_REPLACED = _counter("jobpipe_consumers_replaced_total",
                              "Kafka consumers replaced because their group membership was stuck.",
                              ["role"])

_SUFFIXES = {"counter": ("_total",), "gauge": ("",),
             "histogram": ("_bucket", "_sum", "_count")}


def _sync_value_class() -> None:
    """Make metrics created from now on follow ``$PROMETHEUS_MULTIPROC_DIR``.

    prometheus_client reads the variable once, when it is imported; jobpipe
    may set it later (in a ``--processes N`` parent), so look again.
    """
    if os.environ.get(MULTIPROC_ENV) and values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def is_multiprocess() -> bool:
    """Whether metrics are (or will be) shared through ``$PROMETHEUS_MULTIPROC_DIR``."""
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare_multiprocess() -> str:
    """Switch to multiprocess metrics; call in the parent before forking.

    Uses ``$PROMETHEUS_MULTIPROC_DIR`` when set (its stale ``*.db`` files from
    an earlier run are removed, as prometheus_client requires), else a fresh
    temporary directory removed when this process exits. Metrics this process
    already created are re-created in multiprocess mode.

    Returns:
        The directory.
    """
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="jobpipe-metrics-")
        os.environ[MULTIPROC_ENV] = path
        atexit.register(_remove_dir, path, os.getpid())
    for proxy in _ALL:
        proxy.reset()
    _sync_value_class()
    return path


def _remove_dir(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # forked children inherit atexit hooks
        shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Tell the merged view a child exited, so its ``livesum`` gauges drop out."""
    if is_multiprocess():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """The registry to expose: merged files in multiprocess mode, else the default."""
    if not is_multiprocess():
        return REGISTRY
    merged = CollectorRegistry()
    merged.register(_MergedCollector())
    return merged


class _MergedCollector(Collector):
    """Every process's values, plus an empty family for each metric no process
    has used yet, so ``/metrics`` always lists every documented family."""

    def __init__(self) -> None:
        self._files = multiprocess.MultiProcessCollector(None)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        seen: set[str] = set()
        for family in self._files.collect():  # type: ignore[no-untyped-call]
            seen.add(family.name)
            yield family
        for proxy in _ALL:
            for family in proxy.resolve().describe():
                if family.name not in seen:
                    yield family


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type, for an HTTP handler
    of one's own (the ingest server serves ``/metrics`` on its own port)."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint.

    Attributes:
        host: the address it listens on.
        port: the port (the real one when 0 was asked for).
    """

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(port: int, host: str | None = None) -> MetricsServer:
    """Serve ``/metrics`` on a background thread.

    In multiprocess mode (see :func:`prepare_multiprocess`) the endpoint merges
    every process's values; serve it from the parent only.

    Args:
        port: TCP port; 0 picks a free one (see the returned ``port``).
        host: listen address; default ``$JOBPIPE_METRICS_HOST`` or 127.0.0.1
            (containers set ``0.0.0.0`` so Prometheus can reach them).
    """
    host = host or os.environ.get(HOST_ENV, "127.0.0.1")
    for proxy in _ALL:  # families appear (with no samples) before first use
        proxy.resolve()
    server, thread = start_http_server(port, addr=host, registry=registry())
    actual = int(server.server_port)
    log.info("serving metrics on http://%s:%d/metrics", host, actual)
    return MetricsServer(host, actual, server, thread)


def exported_names() -> set[str]:
    """Every sample name jobpipe can export (``jobpipe_jobs_processed_total``,
    ``jobpipe_job_run_seconds_bucket`` ...), for checking dashboards and alerts."""
    found: set[str] = set()
    for proxy in _ALL:
        for family in proxy.resolve().describe():
            found.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return found

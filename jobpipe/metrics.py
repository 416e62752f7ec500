"""Prometheus metrics of every stage, defined in one place.

Names follow Prometheus conventions: ``_total`` counters, ``_seconds``
histograms, base units. With ``--processes N`` each process writes to
``$PROMETHEUS_MULTIPROC_DIR`` (set by :func:`prepare_multiprocess` before any
worker forks) and the parent serves the merged view.
"""

from __future__ import annotations

import os
import tempfile

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# --- ingest -------------------------------------------------------------------------
JOBS_ENQUEUED = Counter("jobpipe_jobs_enqueued_total", "Jobs accepted into Redis.",
                        ["queue"])
ENQUEUE_REJECTED = Counter("jobpipe_enqueue_rejected_total",
                           "Enqueues refused (bad input, full, unavailable).", ["queue", "reason"])
ENQUEUE_SECONDS = Histogram("jobpipe_enqueue_seconds", "Time of one enqueue call.", ["queue"],
                            buckets=LATENCY_BUCKETS_S)

# --- bridge -------------------------------------------------------------------------
JOBS_BRIDGED = Counter("jobpipe_jobs_bridged_total", "Jobs acknowledged by Kafka.", ["queue"])
BRIDGE_BATCH_SIZE = Histogram("jobpipe_bridge_batch_size", "Jobs per batch taken from Redis.",
                              ["queue"], buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000))
PRODUCE_SECONDS = Histogram("jobpipe_bridge_produce_seconds",
                            "From produce() to the last delivery report of a batch.", ["queue"],
                            buckets=LATENCY_BUCKETS_S)
BRIDGE_INFLIGHT = Gauge("jobpipe_bridge_inflight_jobs", "Jobs taken and not yet acked by Kafka.",
                        ["queue"], multiprocess_mode="livesum")
BRIDGE_DEAD = Counter("jobpipe_bridge_dead_total", "Jobs Kafka refused for good.",
                      ["queue", "reason"])
JOBS_PROMOTED = Counter("jobpipe_jobs_promoted_total", "Delayed jobs moved to ready.", ["queue"])
REDIS_BACKLOG = Gauge("jobpipe_redis_backlog_jobs", "Jobs waiting in Redis.",
                      ["queue", "state"], multiprocess_mode="max")

# --- consumers ----------------------------------------------------------------------
JOBS_PROCESSED = Counter("jobpipe_jobs_processed_total", "Jobs whose handler succeeded.",
                         ["queue", "task"])
JOBS_FAILED = Counter("jobpipe_jobs_failed_total", "Handler failures.", ["queue", "task"])
JOBS_RETRIED = Counter("jobpipe_jobs_retried_total", "Jobs sent to a retry tier.",
                       ["queue", "task"])
JOBS_DEAD_LETTERED = Counter("jobpipe_jobs_dead_lettered_total", "Jobs sent to the DLQ.",
                             ["queue", "reason"])
JOBS_DUPLICATE_SKIPPED = Counter("jobpipe_jobs_duplicate_skipped_total",
                                 "Redeliveries of completed jobs, skipped.", ["queue"])
RUN_SECONDS = Histogram("jobpipe_job_run_seconds", "Handler run time.", ["queue", "task"],
                        buckets=LATENCY_BUCKETS_S)
END_TO_END_SECONDS = Histogram("jobpipe_job_end_to_end_seconds",
                               "From enqueue to handler completion.", ["queue"],
                               buckets=LATENCY_BUCKETS_S)
CONSUMER_LAG = Gauge("jobpipe_consumer_lag_messages", "Messages behind the end of each topic.",
                     ["topic"], multiprocess_mode="max")


def prepare_multiprocess() -> str:
    """Point prometheus_client at a shared directory before processes fork.

    Returns:
        The directory (created if ``PROMETHEUS_MULTIPROC_DIR`` was unset).
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="jobpipe-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on a background thread; merged across processes in
    multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=host, registry=registry)
    else:
        start_http_server(port, addr=host)

"""What the dashboard reads and does, blocking: the server runs each call in a thread.

Reads are ``jobpipe stats``' snapshot (:class:`jobpipe.stats.StatsCollector`)
plus who is alive (:mod:`dashboard.liveness`); actions are the very functions
behind ``jobpipe pause``/``resume`` and ``jobpipe dlq``. Calls are serialised
by one lock: the clients are not shared between threads, and an operator's
clicks are few.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from consumers.control import pause_queue, pause_tenant, resume_queue, resume_tenant
from consumers.dlq.record import DlqFilter, detail, format_time
from consumers.dlq.tools import list_records, purge_records, replay_records
from consumers.heartbeat import last_heartbeats
from dashboard import liveness
from dashboard.latency import LatencyReader
from jobpipe.connections import kafka_admin_config, redis_client
from jobpipe.jobstatus import lookup
from jobpipe.settings import Settings
from jobpipe.stats import StatsCollector
from jobpipe.stats_model import Snapshot, compute_rates, to_json
from jobpipe.topology import QueueSpec


class Backend:
    """The dashboard's Redis and Kafka clients and everything it does with them.

    Args:
        metrics_urls: the workers' ``/metrics`` addresses, for end-to-end latency.
    """

    def __init__(self, settings: Settings, metrics_urls: Sequence[str] = ()) -> None:
        self.settings = settings
        self._latency = LatencyReader(metrics_urls)
        self._lock = threading.Lock()
        self._collector = StatsCollector(settings)
        self._redis = redis_client(settings.redis)
        self._admin = AdminClient(kafka_admin_config(settings.kafka))
        self._previous: Snapshot | None = None

    def close(self) -> None:
        """Release the Redis connections."""
        self._collector.close()
        self._redis.close()

    def spec(self, queue: str) -> QueueSpec | None:
        """The declared queue called ``queue``, or ``None``."""
        return self.settings.topology.queues.get(queue)

    def stats(self) -> dict[str, Any]:
        """``jobpipe stats --json``'s document (rates since the previous call), plus the
        bridges and workers with their heartbeats."""
        with self._lock:
            current = self._collector.snapshot()
            rates = compute_rates(self._previous, current)
            self._previous = current
            doc = to_json(current, rates)
            now_ms = int(time.time() * 1000)
            doc["bridges"] = [{"id": b.bridge_id, "alive": b.alive,
                               "last_heartbeat_ms": b.last_heartbeat_ms,
                               "seconds_ago": _seconds_ago(now_ms, b.last_heartbeat_ms)}
                              for b in liveness.bridges(self._redis, self.settings, now_ms)]
            try:
                members = liveness.workers(self._admin, self.settings)
            except KafkaException as exc:
                members, doc["workers_error"] = [], str(exc)
            beats = last_heartbeats(self._redis, self.settings.namespace)
            doc["workers"] = [{"client_id": w.client_id, "host": w.host,
                               "partitions": w.partitions, "in_group": w.in_group,
                               "last_heartbeat_ms": w.last_heartbeat_ms,
                               "seconds_ago": _seconds_ago(now_ms, w.last_heartbeat_ms)}
                              for w in liveness.with_heartbeats(members, beats)]
            doc["queue_order"] = [q.queue for q in current.queues]
            latency, doc["metrics_errors"] = self._latency.read()
            doc["metrics_scraped"] = len(self._latency.urls)
            for name, queue in doc["queues"].items():
                queue["e2e"] = latency.get(name)
            return doc

    def pause(self, spec: QueueSpec, tenant: str | None) -> str:
        with self._lock:
            if tenant is None:
                pause_queue(self._redis, self.settings.namespace, spec.name)
                return f"paused queue {spec.name}"
            pause_tenant(self._redis, self.settings.namespace, spec.name, tenant)
            return f"paused tenant {tenant} of queue {spec.name}"

    def resume(self, spec: QueueSpec, tenant: str | None) -> str:
        with self._lock:
            if tenant is None:
                resume_queue(self._redis, self.settings.namespace, spec)
                return f"resumed queue {spec.name}"
            moved = resume_tenant(self._redis, self.settings.namespace, spec, tenant)
            return f"resumed tenant {tenant} of queue {spec.name}; {moved} parked job(s) back"

    def dlq_list(self, spec: QueueSpec, limit: int) -> list[dict[str, Any]]:
        """The oldest ``limit`` DLQ records, one summary each."""
        with self._lock:
            listed = list_records(self.settings, spec, DlqFilter(limit=limit))
        return [{"ref": item.record.ref, "time": format_time(item.record.timestamp_ms),
                 "job_id": item.record.job.id if item.record.job else None,
                 "task": item.record.job.task if item.record.job else None,
                 "reason": item.record.reason, "error": item.record.error,
                 "attempts": item.record.job.attempt if item.record.job else None,
                 "replayed": item.replayed} for item in listed]

    def dlq_show(self, spec: QueueSpec, ref: str) -> dict[str, Any] | None:
        """The full record named by ``ref`` (job id or PARTITION:OFFSET), or ``None``."""
        with self._lock:
            listed = list_records(self.settings, spec, DlqFilter(refs=(ref,), limit=1))
        if not listed:
            return None
        out = detail(listed[0].record)
        out["replayed"] = listed[0].replayed
        return out

    def dlq_replay(self, spec: QueueSpec, refs: tuple[str, ...]) -> str:
        with self._lock:
            report = replay_records(self.settings, spec, DlqFilter(refs=refs))
        return report.summary()

    def dlq_purge(self, spec: QueueSpec) -> str:
        with self._lock:
            deleted = purge_records(self.settings, spec)
        return f"purged {sum(deleted.values())} record(s)"

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The state record of a job of a ``track_status`` queue, or ``None``."""
        with self._lock:
            status = lookup(self._redis, self.settings, job_id)
        return None if status is None else status.to_json()


def _seconds_ago(now_ms: int, then_ms: int | None) -> float | None:
    """How long ago ``then_ms`` was, in seconds to a tenth (``None`` stays ``None``)."""
    return None if then_ms is None else round(max(0, now_ms - then_ms) / 1000, 1)

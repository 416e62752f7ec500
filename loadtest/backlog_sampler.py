"""Backlog sampling: jobs waiting in Redis and in Kafka, once a second.

Built on :class:`jobpipe.stats.StatsCollector` (a few pipelined Redis reads
and admin requests; it never joins the workers' consumer group). Redis
backlog = ready + in flight + delayed + parked; Kafka backlog = the workers
group's lag (end offsets minus committed offsets, committed about once a
second, so it lags the truth by up to that long). A sample that fails (a
broker being killed by the chaos schedule) is skipped, not fatal, and the next
one uses fresh clients: an admin client can stay stuck after its broker was
killed and restarted, which froze the backlog at its last value before the
kill and made a drained run look undrained. Each sample also reads Redis's
AOF state (:mod:`loadtest.aof`); None where Redis does not say.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jobpipe import names
from jobpipe.settings import Settings
from loadtest.aof import AofSample, read_aof

log = logging.getLogger(__name__)


@dataclass
class BacklogSeries:
    """Samples taken so far: seconds since start, Redis and Kafka backlog."""

    t_s: list[float] = field(default_factory=list)
    redis: list[int] = field(default_factory=list)
    kafka: list[int] = field(default_factory=list)
    produced: list[int] = field(default_factory=list)
    aof: list[AofSample | None] = field(default_factory=list)

    def last(self) -> tuple[int, int]:
        """The latest (Redis, Kafka) backlog, (0, 0) before the first sample."""
        return (self.redis[-1], self.kafka[-1]) if self.t_s else (0, 0)

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-ready form."""
        return {"t_s": self.t_s, "redis": self.redis, "kafka": self.kafka,
                "produced": self.produced,
                "aof": [s.to_list() if s is not None else None for s in self.aof]}


class BacklogSampler:
    """A thread sampling the backlog every ``interval_s`` until :meth:`stop`.

    Args:
        settings: the run's settings.
        start_s: wall-clock start of the run (samples are seconds since it).
    """

    def __init__(self, settings: Settings, start_s: float, interval_s: float = 1.0) -> None:
        from jobpipe.stats import StatsCollector

        self.series = BacklogSeries()
        self.start_s = start_s
        self.interval_s = interval_s
        self._settings = settings
        self._collector = StatsCollector(settings, timeout_s=2.0)
        self._group = names.group_id(settings.namespace, "workers")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="backlog")
        self._thread.start()

    def sample(self) -> None:
        """Take one sample now."""
        try:
            snap = self._collector.snapshot()
        except Exception as exc:  # a killed broker or Redis: skip this sample
            log.debug("backlog sample failed: %s", exc)
            self._renew()
            return
        redis_jobs = sum(q.backlog for q in snap.queues)
        kafka_jobs = sum(q.group_lag(self._group) for q in snap.queues)
        produced = sum(q.produced_total for q in snap.queues)
        try:
            aof = read_aof(self._collector.redis)
        except Exception as exc:  # refused by an ACL, or Redis just went: no AOF figure
            log.debug("AOF sample failed: %s", exc)
            aof = None
        with self._lock:
            self.series.t_s.append(round(time.time() - self.start_s, 2))
            self.series.redis.append(redis_jobs)
            self.series.kafka.append(kafka_jobs)
            self.series.produced.append(produced)
            self.series.aof.append(aof)

    def last(self) -> tuple[int, int]:
        """The latest (Redis, Kafka) backlog."""
        with self._lock:
            return self.series.last()

    def stop(self) -> BacklogSeries:
        """Stop sampling; the series taken."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._collector.close()
        return self.series

    def _renew(self) -> None:
        """Replace the collector (its clients) with a fresh one."""
        from jobpipe.stats import StatsCollector

        self._collector.close()
        self._collector = StatsCollector(self._settings, timeout_s=2.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

"""Queue topology: what each queue is, as declared under ``[queues.NAME]``.

Pure data: no Redis, no Kafka. :mod:`jobpipe.names` turns a queue into key and
topic names; :mod:`jobpipe.admin` turns the topology into topics.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from jobpipe import names
from jobpipe.errors import ConfigError

# How long a completed job's done marker is kept, unless the queue says.
DEFAULT_IDEMPOTENCY_TTL_S = 86_400


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue.

    Attributes:
        name: queue name, ``[A-Za-z0-9_-]``.
        partitions: partitions of each of its Kafka topics.
        shards: Redis ready lists per priority level; unkeyed jobs spread over
            them, a keyed job always lands on the same one.
        shard_slots: each shard's keys (its ready lists at every level, delayed
            set, wake-up, in-flight lists and their index and owners, dead list,
            unique windows) carry a hash tag of their own, ``{q.s<shard>}``, so
            on a Redis Cluster the queue spreads over up to ``shards`` slots,
            and so over primaries (docs/scaling.md). Not for fair queues.
        retry_tiers_s: delay of each retry tier; attempt n waits tier n-1 (the
            last tier repeats).
        retry_jitter: up to this fraction of a tier's delay is added at random to
            each retry, so jobs that failed together do not all retry together.
        max_attempts: attempts before a job is dead-lettered.
        weight: share of the worker lottery against other queues. While
            several queues have jobs waiting in a worker, it runs them in
            proportion to their weights, from its first job (a starting worker
            first waits for each of its partitions' first fetch), among the
            queues whose partitions it holds.
        priorities: lottery weight of each priority level, level 0 first.
        ordered: jobs with the same key run one at a time, in order.
        fair: one Redis list per tenant, drained round robin by the bridge.
        tenant_weights: bridge share of named tenants (others weigh 1).
        max_kafka_lag: fair queues: the bridge stops feeding Kafka past this
            many unconsumed jobs, so fairness is decided in Redis, not lost in
            Kafka's FIFO. ``None`` = unbounded.
        max_backlog: high-water mark of jobs waiting in Redis (backpressure).
        rate_limit_per_s: jobs per second for the whole queue, all workers.
        tenant_rate_limit_per_s: jobs per second for each tenant.
        timeout_s: default run-time limit of a job of this queue.
        idempotency_ttl_s: how long a completed job's marker is kept.
        max_job_bytes: size cap of an encoded job.
        track_status: keep a state record per job (``jobpipe job ID``,
            cancellation); costs a Redis write per batch at each stage.
        status_ttl_s: how long a job's state record is kept at least after its
            last change (:func:`jobpipe.jobstatus.record_ttl_s`).
        keep_results: also keep a succeeded job's return value (needs
            ``track_status``).
        result_max_bytes: size cap of a kept result (JSON); a larger one is
            dropped and the record says so.
        result_ttl_s: how long a kept result (and its record) stays at least;
            the queue's records are kept the longer of the two TTLs.
    """

    name: str
    partitions: int = 6
    shards: int = 4
    shard_slots: bool = False
    retry_tiers_s: tuple[float, ...] = (5.0, 30.0, 300.0, 1800.0)
    retry_jitter: float = 0.2
    max_attempts: int = 5
    weight: int = 1
    priorities: tuple[int, ...] = (1,)
    ordered: bool = False
    fair: bool = False
    tenant_weights: dict[str, int] = field(default_factory=dict)
    max_kafka_lag: int | None = None
    max_backlog: int | None = 1_000_000
    rate_limit_per_s: float | None = None
    tenant_rate_limit_per_s: float | None = None
    timeout_s: float | None = 300.0
    idempotency_ttl_s: int = DEFAULT_IDEMPOTENCY_TTL_S
    max_job_bytes: int = 262_144
    track_status: bool = False
    status_ttl_s: int = 86_400
    keep_results: bool = False
    result_max_bytes: int = 65_536
    result_ttl_s: int = 3_600

    def __post_init__(self) -> None:
        where = f"queues.{self.name}"
        if not names.is_valid_queue_name(self.name):
            raise ConfigError(f"{where}: queue name must be 1-100 of [A-Za-z0-9_-]")
        for attr in ("partitions", "shards", "max_attempts", "weight", "max_job_bytes",
                     "status_ttl_s", "result_max_bytes", "result_ttl_s"):
            if getattr(self, attr) < 1:
                raise ConfigError(f"{where}.{attr}: must be >= 1")
        if not self.retry_tiers_s or any(d <= 0 for d in self.retry_tiers_s):
            raise ConfigError(f"{where}.retry_tiers_s: needs at least one delay, each > 0")
        if list(self.retry_tiers_s) != sorted(self.retry_tiers_s):
            raise ConfigError(f"{where}.retry_tiers_s: delays must increase")
        if not 0 <= self.retry_jitter <= 1:
            raise ConfigError(f"{where}.retry_jitter: must be between 0 and 1")
        if not self.priorities or any(w < 1 for w in self.priorities):
            raise ConfigError(f"{where}.priorities: needs at least one weight, each >= 1")
        if self.keep_results and not self.track_status:
            raise ConfigError(f"{where}.keep_results: needs track_status = true")
        if self.fair and self.shard_slots:
            raise ConfigError(f"{where}.shard_slots: a fair queue keeps its tenant lists "
                              "under the queue's own hash tag")
        if self.fair and len(self.priorities) > 1:
            raise ConfigError(f"{where}: a fair queue has a single priority level")
        for attr in ("max_kafka_lag", "max_backlog", "rate_limit_per_s",
                     "tenant_rate_limit_per_s", "timeout_s"):
            value = getattr(self, attr)
            if value is not None and value <= 0:
                raise ConfigError(f"{where}.{attr}: must be > 0")

    @property
    def levels(self) -> range:
        """The priority levels, 0 (highest) first."""
        return range(len(self.priorities))

    @property
    def slots(self) -> tuple[int | None, ...]:
        """The hash-tag slots of the queue's ready work: ``(None,)`` (every key under
        ``{q}``), or one per shard with ``shard_slots``."""
        return tuple(range(self.shards)) if self.shard_slots else (None,)

    def slot_of(self, shard: int) -> int | None:
        """The slot of a shard's keys (see :attr:`slots`)."""
        return shard if self.shard_slots else None

    def retry_delay_s(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``, after ``attempt`` failed."""
        return self.retry_tiers_s[min(attempt, len(self.retry_tiers_s)) - 1]

    def retry_topics(self, ns: str) -> list[str]:
        """The retry tier topics of this queue, in the order of ``retry_tiers_s``."""
        return [names.retry_topic(ns, self.name, d) for d in self.retry_tiers_s]

    def topics(self, ns: str) -> list[str]:
        """Every Kafka topic of this queue: main per level, retry tiers, DLQ."""
        return [
            *(names.main_topic(ns, self.name, level) for level in self.levels),
            *self.retry_topics(ns),
            names.dlq_topic(ns, self.name),
        ]


@dataclass(frozen=True, slots=True)
class Topology:
    """All declared queues, by name."""

    queues: dict[str, QueueSpec]

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigError("queues: at least one queue must be declared")

    def get(self, name: str) -> QueueSpec:
        """The queue called ``name``.

        Raises:
            ConfigError: no such queue.
        """
        try:
            return self.queues[name]
        except KeyError:
            known = ", ".join(sorted(self.queues))
            raise ConfigError(f"unknown queue {name!r} (declared: {known})") from None

    def select(self, wanted: list[str] | tuple[str, ...] | None) -> list[QueueSpec]:
        """The named queues, or all of them when ``wanted`` is empty."""
        return [self.get(n) for n in wanted] if wanted else list(self.queues.values())


def shard_for(key: bytes | None, shards: int, spread: int) -> int:
    """The ready-list shard of a job: a keyed job always the same one, so its
    order holds; an unkeyed one wherever ``spread`` (any counter) points.

    Producers and the bridge (when it promotes delayed jobs) both call this.
    """
    if key is None:
        return spread % shards
    return zlib.crc32(key) % shards

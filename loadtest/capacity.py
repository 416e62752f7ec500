"""Capacity planner: how many of each piece a target rate needs. Pure arithmetic.

Every count is ``ceil(target / (per_unit_rate * utilization))`` where
``utilization = 1 - headroom``: with 40 % headroom no piece runs above 60 % of
what it was measured to sustain, which leaves room for bursts, a failed node's
load and rebalances. The per-process rates come from a load-test report (the
highest rate sustained under the p99 target, divided by the processes that
carried it) or, without one, from the defaults below, which are figures
measured on a 2-core laptop-class box and are printed as assumptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from jobpipe.errors import ConfigError
from jobpipe.topology import DEFAULT_IDEMPOTENCY_TTL_S

# Defaults (jobs/s per process, one core each) used when no report is given;
# see docs/benchmarks/loadtest.md for where they come from.
DEFAULT_BRIDGE_PER_S = 20_000.0
DEFAULT_WORKER_PER_S = 10_000.0
DEFAULT_PRODUCER_PER_S = 20_000.0
# One Redis primary is single-threaded; batched LPUSH + Lua batch moves cost a
# few ops per job, so one shard carries on the order of this many jobs/s.
DEFAULT_REDIS_SHARD_PER_S = 150_000.0
# One partition is read by one worker process at a time; keep partitions light.
DEFAULT_PARTITION_PER_S = 5_000.0
# Sustained write throughput one broker takes (replica traffic included).
DEFAULT_BROKER_BYTES_PER_S = 60_000_000.0
DEFAULT_REPLICATION = 3
DEFAULT_JOB_BYTES = 300
# Redis memory per done marker (a field of a 256 ms hash: 97 B at 30,000
# jobs/s, 41 B at 200 where the hash stays a listpack; the high-rate figure, the
# safe side; scripts/bench_done_markers.py) and AOF bytes appended per job
# (pushed, taken, marked done: 600 B with the load test's jobs, about twice a
# job's bytes plus 50; scripts/aof_composition.py). docs/benchmarks.md, "AOF
# bytes per job".
DEFAULT_MARKER_BYTES = 97.0
DEFAULT_AOF_BYTES_PER_JOB = 600.0
# The memory of one Redis primary a plan may fill, when not given.
DEFAULT_PRIMARY_MEMORY_GB = 16.0


@dataclass(frozen=True, slots=True)
class Measured:
    """Per-unit capacities the plan divides by.

    Attributes:
        bridge_per_s, worker_per_s, producer_per_s: jobs/s of one process.
        redis_shard_per_s: jobs/s one Redis primary carries.
        partition_per_s: jobs/s one partition should carry.
        broker_bytes_per_s: bytes/s one Kafka broker writes (all replicas).
        job_bytes: size of one encoded job.
        replication: Kafka replication factor.
        p99_floor_ms: the lowest p99 measured (at light load), if known.
        marker_bytes: Redis memory one done marker takes.
        aof_bytes_per_job: AOF bytes Redis appends per job.
        source: where the figures came from (a report folder or ``defaults``).
        redis_source: where ``redis_shard_per_s`` came from (a scale-out bench
            JSON, ``--redis-primary-per-s``, or the default estimate).
    """

    bridge_per_s: float = DEFAULT_BRIDGE_PER_S
    worker_per_s: float = DEFAULT_WORKER_PER_S
    producer_per_s: float = DEFAULT_PRODUCER_PER_S
    redis_shard_per_s: float = DEFAULT_REDIS_SHARD_PER_S
    partition_per_s: float = DEFAULT_PARTITION_PER_S
    broker_bytes_per_s: float = DEFAULT_BROKER_BYTES_PER_S
    job_bytes: int = DEFAULT_JOB_BYTES
    replication: int = DEFAULT_REPLICATION
    p99_floor_ms: float | None = None
    marker_bytes: float = DEFAULT_MARKER_BYTES
    aof_bytes_per_job: float = DEFAULT_AOF_BYTES_PER_JOB
    source: str = "defaults"
    redis_source: str = "default estimate"

    def __post_init__(self) -> None:
        for name in ("bridge_per_s", "worker_per_s", "producer_per_s", "redis_shard_per_s",
                     "partition_per_s", "broker_bytes_per_s", "marker_bytes",
                     "aof_bytes_per_job"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"capacity: {name} must be > 0")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run for the target, and why.

    Attributes:
        target_per_s, p99_ms, headroom: the request.
        producers, bridges, workers, partitions, redis_shards, kafka_brokers: counts.
        marker_memory_gb: Redis memory the done markers fill at the target rate,
            at least (target x idempotency TTL x bytes per marker; a retry
            marks later). A queue's markers all live on the primary of its
            ``{q}`` slot, ``shard_slots`` or not. A queue with ``track_status``
            also keeps a state record per job there, not counted here.
        aof_mb_per_s: what Redis appends to its AOF at the target rate, all
            primaries together.
        assumptions: every figure the counts rest on, one line each.
        warnings: where the plan may not hold (e.g. the p99 target is below
            what was ever measured).
    """

    target_per_s: float
    p99_ms: float
    headroom: float
    producers: int
    bridges: int
    workers: int
    partitions: int
    redis_shards: int
    kafka_brokers: int
    marker_memory_gb: float
    aof_mb_per_s: float
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in (
            "target_per_s", "p99_ms", "headroom", "producers", "bridges", "workers",
            "partitions", "redis_shards", "kafka_brokers", "marker_memory_gb",
            "aof_mb_per_s", "assumptions", "warnings")}


def parse_target(text: str) -> float:
    """``100000/s``, ``100000``, ``100k/s`` or ``1.5M/s`` to jobs per second.

    Raises:
        ConfigError: not a positive rate.
    """
    body = text.strip().lower().removesuffix("/s")
    scale = 1.0
    if body.endswith("k"):
        body, scale = body[:-1], 1e3
    elif body.endswith("m"):
        body, scale = body[:-1], 1e6
    try:
        value = float(body) * scale
    except ValueError:
        raise ConfigError(f"--target: {text!r} is not a rate like 100000/s") from None
    if value <= 0:
        raise ConfigError(f"--target: {text!r} must be > 0")
    return value


def _units(target: float, per_unit: float, utilization: float) -> int:
    return max(1, math.ceil(target / (per_unit * utilization)))


def plan_capacity(target_per_s: float, p99_ms: float, measured: Measured,
                  headroom: float = 0.4, *,
                  idempotency_ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S,
                  primary_memory_gb: float = DEFAULT_PRIMARY_MEMORY_GB) -> Plan:
    """Size every piece for ``target_per_s`` jobs/s with ``headroom`` spare.

    The done markers' memory is reported, and warned of when one queue's would
    fill more than ``primary_memory_gb`` at that headroom: more primaries do
    not help there, a shorter ``idempotency_ttl_s`` does.

    Raises:
        ConfigError: headroom outside [0, 1), a non-positive target, a negative
            TTL or a non-positive memory.
    """
    if not 0 <= headroom < 1:
        raise ConfigError("--headroom must be in [0, 1), e.g. 0.4 for 40 % spare")
    if target_per_s <= 0 or p99_ms <= 0:
        raise ConfigError("--target and --p99-ms must be > 0")
    if idempotency_ttl_s < 0 or primary_memory_gb <= 0:
        raise ConfigError("--idempotency-ttl-s must be >= 0 and --primary-memory-gb > 0")
    use = 1 - headroom
    producers = _units(target_per_s, measured.producer_per_s, use)
    bridges = _units(target_per_s, measured.bridge_per_s, use)
    workers = _units(target_per_s, measured.worker_per_s, use)
    # Each worker process needs a partition of its own, and room to double the
    # workers without repartitioning (partitions can grow but never shrink, and
    # growing them reshuffles keys).
    partitions = max(2 * workers, _units(target_per_s, measured.partition_per_s, use))
    redis_shards = _units(target_per_s, measured.redis_shard_per_s, use)
    write_bytes_per_s = target_per_s * measured.job_bytes * measured.replication
    brokers = max(measured.replication,
                  _units(write_bytes_per_s, measured.broker_bytes_per_s, use))
    marker_gb = target_per_s * idempotency_ttl_s * measured.marker_bytes / 1e9
    aof_mb_per_s = target_per_s * measured.aof_bytes_per_job / 1e6
    assumptions = [
        f"figures from: {measured.source}",
        f"headroom {headroom:.0%}: every piece planned at <= {use:.0%} of its measured rate",
        f"one producer process: {measured.producer_per_s:,.0f} jobs/s",
        f"one bridge process: {measured.bridge_per_s:,.0f} jobs/s",
        f"one worker process: {measured.worker_per_s:,.0f} jobs/s (at the measured handler time)",
        f"one partition: {measured.partition_per_s:,.0f} jobs/s; partitions >= 2 x workers",
        f"one Redis primary: {measured.redis_shard_per_s:,.0f} jobs/s "
        f"(from {measured.redis_source})",
        f"one Kafka broker: {measured.broker_bytes_per_s / 1e6:,.0f} MB/s written, "
        f"jobs of {measured.job_bytes} bytes, replication {measured.replication}",
        f"done markers kept {idempotency_ttl_s:,.0f} s (the queue's idempotency_ttl_s), "
        f"{measured.marker_bytes:,.0f} bytes of Redis memory each (a job keyed by its "
        f"id; an explicit idempotency key is a key of its own, and more; a queue with "
        f"track_status keeps a state record per job besides, not counted)",
        f"Redis appends {measured.aof_bytes_per_job:,.0f} bytes of AOF per job",
    ]
    warnings: list[str] = []
    if measured.p99_floor_ms is not None and measured.p99_floor_ms > p99_ms:
        warnings.append(f"p99 target {p99_ms:g} ms is below the lowest p99 ever measured "
                        f"({measured.p99_floor_ms:,.1f} ms): more processes will not get there")
    if marker_gb > primary_memory_gb * use:
        warnings.append(
            f"done markers fill {marker_gb:,.1f} GB at this rate, all on the primary of the "
            f"queue's slot (over {use:.0%} of a {primary_memory_gb:g} GB primary): lower the "
            f"queue's idempotency_ttl_s (it must outlast any redelivery of a job that ran) "
            f"or spread the load over more queues")
    if measured.source == "defaults":
        warnings.append("no report given: run `jobpipe loadtest --ramp ...` on your hardware "
                        "and pass --from-report for figures you can trust")
    return Plan(target_per_s, p99_ms, headroom, producers, bridges, workers, partitions,
                redis_shards, brokers, round(marker_gb, 2), round(aof_mb_per_s, 2),
                assumptions, warnings)


def measured_from_report(report: dict[str, object], folder: str) -> Measured:
    """Per-process figures from a load-test ``report.json``.

    The highest sustained rate of a ramp (or the throughput of a constant run)
    is divided by the processes of each kind that carried it. That is a lower
    bound for the pieces that were not the bottleneck, which the plan then
    over-provisions slightly: the safe side.

    Raises:
        ConfigError: the report lacks the figures.
    """
    try:
        config = report["config"]
        totals = report["totals"]
        if not isinstance(config, dict) or not isinstance(totals, dict):
            raise TypeError("config and totals must be tables")
        saturation = report.get("saturation")
        rate = float(totals["throughput_per_s"])
        if isinstance(saturation, dict) and saturation.get("sustained_per_s"):
            rate = float(saturation["sustained_per_s"])
        p99_floor = report.get("p99_floor_ms")
        aof = report.get("redis_aof")
        aof_per_job = aof.get("bytes_per_job") if isinstance(aof, dict) else None
        return Measured(
            bridge_per_s=rate / int(config["bridges"]),
            worker_per_s=rate / int(config["workers"]),
            producer_per_s=rate / int(config["producers"]),
            job_bytes=int(totals.get("job_bytes", DEFAULT_JOB_BYTES)),
            p99_floor_ms=float(p99_floor) if isinstance(p99_floor, int | float) else None,
            aof_bytes_per_job=(float(aof_per_job) if isinstance(aof_per_job, int | float)
                               and aof_per_job > 0 else DEFAULT_AOF_BYTES_PER_JOB),
            source=f"report {folder} ({rate:,.0f} jobs/s sustained)",
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ConfigError(f"--from-report {folder}: report.json lacks the figures ({exc})") \
            from None


def with_redis_primary(measured: Measured, per_s: float, source: str) -> Measured:
    """``measured`` with a measured per-primary intake rate in place of the estimate.

    Raises:
        ConfigError: ``per_s`` is not > 0.
    """
    if per_s <= 0:
        raise ConfigError(f"{source}: a Redis primary's rate must be > 0, not {per_s:g}")
    return replace(measured, redis_shard_per_s=per_s, redis_source=source)


def redis_primary_from_scaleout(data: object, path: str) -> float:
    """The per-primary jobs/s of a ``jobpipe bench scaleout --json`` file.

    Raises:
        ConfigError: the file lacks ``redis_primary_per_s``.
    """
    value = data.get("redis_primary_per_s") if isinstance(data, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"--from-scaleout {path}: no redis_primary_per_s figure in it "
                          "(write it with `jobpipe bench scaleout --json PATH`)")
    return float(value)

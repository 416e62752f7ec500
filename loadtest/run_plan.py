"""What a load-test run was asked to do: :class:`RunPlan`. Pure data.

The runner writes the plan to ``<run_dir>/plan.json``; every producer process
reads it, so all of them share one schedule and one start time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from jobpipe.errors import ConfigError
from loadtest.schedule import Schedule
from loadtest.workload import HandlerTime, TenantMix

# How a run's processes find where to record (the environment they get).
RUN_DIR_ENV = "JPLT_RUN_DIR"
LEDGER_SYNC_ENV = "JPLT_LEDGER_SYNC"
LEDGER_DIR = "ledger"
KILL_TARGETS = ("bridge", "worker", "kafka", "redis", "redis-primary", "redis-reshard")
#: Targets run on a private Redis Cluster (3 primaries, 3 replicas).
CLUSTER_TARGETS = ("redis-primary", "redis-reshard")
PEERS = ("celery",)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything a run needs to know.

    Attributes:
        run_dir: the report folder (also holds intervals/ and ledger/).
        rates: offered rates; one for a constant run, the steps of a ramp.
        step_s: length of one ramp step (the whole run for a constant rate).
        payload_bytes: approximate size of each job's args.
        queues: queue names, jobs spread round robin over them.
        tenants, tenant_skew: tenant mix (0 tenants = no tenant).
        handler_ms: ``0``, ``5`` or ``exp:5``.
        producers, bridges, workers: processes the run starts.
        partitions: partitions of each queue's topics.
        track_status: the queues keep a state record per job (``track_status``).
        p99_target_ms: the latency target of the saturation search.
        kill, kill_every_s: chaos: what to kill -9 (comma-separated, taken in
            turn) and how often.
        soak: report RSS and open files of each process at start and end.
        peers: peer systems run with the same workload afterwards.
        namespace: the run's own namespace (keys and topics).
        seed: randomness of tenants and handler times.
        start_ns: wall-clock time the schedule starts (set by the runner).
        drain_timeout_s: after the schedule, longest wait for the backlog to empty.
    """

    run_dir: str
    rates: tuple[float, ...]
    step_s: float
    payload_bytes: int = 100
    queues: tuple[str, ...] = ("loadtest",)
    tenants: int = 0
    tenant_skew: float = 1.0
    handler_ms: str = "0"
    producers: int = 1
    bridges: int = 1
    workers: int = 1
    partitions: int = 6
    track_status: bool = False
    p99_target_ms: float = 100.0
    kill: str | None = None
    kill_every_s: float = 10.0
    soak: bool = False
    peers: tuple[str, ...] = field(default=())
    namespace: str = "loadtest"
    seed: int = 1
    start_ns: int = 0
    drain_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.rates or any(r <= 0 for r in self.rates):
            raise ConfigError("--rate must be > 0")
        if self.step_s <= 0:
            raise ConfigError("--duration and --step-s must be > 0")
        for name in ("producers", "bridges", "workers", "partitions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1")
        if not self.queues:
            raise ConfigError("--queues needs at least one queue")
        for target in self.kill_targets:
            if target not in KILL_TARGETS:
                raise ConfigError(f"--kill: {target!r} is not one of {', '.join(KILL_TARGETS)}")
        if self.kill_every_s <= 0:
            raise ConfigError("--every must be > 0")
        for peer in self.peers:
            if peer not in PEERS:
                raise ConfigError(f"--peers: {peer!r} is not one of {', '.join(PEERS)}")
        if self.p99_target_ms <= 0:
            raise ConfigError("--p99-target-ms must be > 0")
        HandlerTime.parse(self.handler_ms)
        self.tenant_mix()

    @property
    def kill_targets(self) -> tuple[str, ...]:
        """What the chaos schedule kills, in turn (``--kill bridge,worker``)."""
        return tuple(t for t in (self.kill or "").split(",") if t)

    @property
    def is_ramp(self) -> bool:
        """More than one step."""
        return len(self.rates) > 1

    def schedule(self) -> Schedule:
        """The open-loop schedule of the run."""
        if self.is_ramp:
            return Schedule.ramp(list(self.rates), self.step_s)
        return Schedule.constant(self.rates[0], self.step_s)

    def tenant_mix(self) -> TenantMix:
        """The tenant mix of the run."""
        return TenantMix(self.tenants, self.tenant_skew)

    def with_start(self, start_ns: int) -> RunPlan:
        """The same plan starting at ``start_ns``."""
        return replace(self, start_ns=start_ns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunPlan:
        """The inverse of :meth:`to_dict`."""
        data = dict(data)
        for name in ("rates", "queues", "peers"):
            data[name] = tuple(data.get(name, ()))
        return cls(**data)

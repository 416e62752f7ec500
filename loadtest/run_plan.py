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
KILL_TARGETS = ("bridge", "worker", "kafka", "redis", "kafka-broker", "redis-primary",
                "redis-reshard")
#: Targets run on a private Redis Cluster (3 primaries, 3 replicas).
CLUSTER_TARGETS = ("redis-primary", "redis-reshard")
#: Targets run on a private Kafka of 3 brokers (replication 3, min ISR 2).
BROKERS_TARGETS = ("kafka-broker",)
#: Targets that kill a service: the run starts a private stack it may kill.
PRIVATE_STACK_TARGETS = ("kafka", "redis", *BROKERS_TARGETS, *CLUSTER_TARGETS)
# --kill: steps are taken in turn (","); the targets of one step are killed at once ("+").
STEP_SEPARATOR = ","
TOGETHER_SEPARATOR = "+"
# --stack-ports: neither privileged nor in Linux's ephemeral range (outgoing connections).
STACK_PORT_RANGE = (1024, 32767)
STACK_PORTS_FORMAT = (f"--stack-ports: give REDIS:KAFKA, two ports {STACK_PORT_RANGE[0]}-"
                      f"{STACK_PORT_RANGE[1]} (e.g. 17100:19400)")
PEERS = ("celery",)


def parse_stack_ports(text: str) -> tuple[int, int]:
    """``REDIS:KAFKA`` (``17100:19400``) as two ports; checked by :class:`RunPlan`.

    Raises:
        ConfigError: not two numbers joined by ``:``.
    """
    redis_port, sep, kafka_port = text.partition(":")
    if not sep or not redis_port.strip().isdigit() or not kafka_port.strip().isdigit():
        raise ConfigError(STACK_PORTS_FORMAT)
    return int(redis_port), int(kafka_port)


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
        kill, kill_every_s: chaos: what to kill -9 and how often. Steps are
            comma-separated and taken in turn; one step may kill several
            targets at once, joined by ``+`` (``kafka-broker+redis-primary``).
        stack_redis_port, stack_kafka_port: first ports of the private stack a
            ``--kill`` of a service starts (``None``: free ones).
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
    stack_redis_port: int | None = None
    stack_kafka_port: int | None = None
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
        self._check_kill()
        if self.kill_every_s <= 0:
            raise ConfigError("--every must be > 0")
        for peer in self.peers:
            if peer not in PEERS:
                raise ConfigError(f"--peers: {peer!r} is not one of {', '.join(PEERS)}")
        if self.p99_target_ms <= 0:
            raise ConfigError("--p99-target-ms must be > 0")
        HandlerTime.parse(self.handler_ms)
        self.tenant_mix()

    def _check_kill(self) -> None:
        for step in self.kill_steps:
            for target in step:
                if target not in KILL_TARGETS:
                    raise ConfigError(f"--kill: {target!r} is not one of "
                                      f"{', '.join(KILL_TARGETS)}")
            if len(set(step)) < len(step):
                raise ConfigError(f"--kill: {TOGETHER_SEPARATOR.join(step)!r} names a target "
                                  "twice")
        if "redis" in self.kill_targets and set(CLUSTER_TARGETS) & set(self.kill_targets):
            raise ConfigError("--kill: redis (one Redis) and redis-primary or redis-reshard "
                              "(a Redis Cluster) cannot share a run")
        ports = (self.stack_redis_port, self.stack_kafka_port)
        if ports != (None, None):
            if not self.private_stack:
                raise ConfigError("--stack-ports: only a run that kills a service starts a "
                                  f"stack ({', '.join(PRIVATE_STACK_TARGETS)})")
            low, high = STACK_PORT_RANGE
            if any(p is None or not low <= p <= high for p in ports):
                raise ConfigError(STACK_PORTS_FORMAT)

    @property
    def kill_steps(self) -> tuple[tuple[str, ...], ...]:
        """What the chaos schedule kills, step by step (``--kill bridge,worker`` is two
        steps of one target; ``kafka-broker+redis-primary`` one step of two)."""
        steps = (tuple(t for t in step.split(TOGETHER_SEPARATOR) if t)
                 for step in (self.kill or "").split(STEP_SEPARATOR))
        return tuple(step for step in steps if step)

    @property
    def kill_targets(self) -> tuple[str, ...]:
        """Every target of every step, in order (repeats included)."""
        return tuple(t for step in self.kill_steps for t in step)

    @property
    def private_stack(self) -> bool:
        """Whether the run kills a service, so it starts a stack of its own."""
        return bool(set(PRIVATE_STACK_TARGETS) & set(self.kill_targets))

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

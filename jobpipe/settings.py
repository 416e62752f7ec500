"""Settings: one frozen dataclass per component, loaded from one place.

Precedence, lowest first (written down here and nowhere else):

    1. defaults in these dataclasses
    2. ``jobpipe.toml`` (``--config PATH``, else ``$JOBPIPE_CONFIG``, else
       ``./jobpipe.toml`` when it exists)
    3. environment: ``JOBPIPE_NAMESPACE``, ``JOBPIPE_REDIS_URL``,
       ``JOBPIPE_KAFKA_BOOTSTRAP`` and, for any field, ``JOBPIPE_<SECTION>_<FIELD>``
       (a text field takes the value as it is; any other field reads it as a
       TOML value: ``500``, ``true``, ``["t1", "t2"]``, ``{"k" = "v"}``)
    4. command-line flags, passed to :func:`load_settings` as ``overrides``

Unknown sections and keys are errors naming the file and the key, and so is a
``JOBPIPE_*`` variable that names no setting (other than those in
:data:`OTHER_VARIABLES`): a typo must never be silently ignored.

TOML has no null. A number setting that may be turned off (``None``: no bound,
no limit) is written as the string ``"none"``, e.g. ``max_backlog = "none"``
for an unbounded backlog; ``JOBPIPE_..._MAX_BACKLOG=none`` says the same.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from jobpipe import names
from jobpipe.errors import ConfigError
from jobpipe.redact import redact_url
from jobpipe.schedule import ScheduleSpec
from jobpipe.topology import QueueSpec, Topology

NONE = "none"
"""How a settings file spells ``None`` for a setting that is not a string."""
DEFAULT_REDIS_PORT = 16379
DEFAULT_KAFKA_PORT = 19092
SAFETY_CRITICAL_KAFKA_KEYS = ("acks", "enable.idempotence")
GROUP_PROTOCOLS = ("consumer", "classic")
MEMBERSHIPS = ("static", "dynamic")
# With group.protocol=consumer (KIP-848) the broker owns these; librdkafka refuses them.
CLASSIC_ONLY_CONSUMER_KEYS = ("session.timeout.ms", "heartbeat.interval.ms",
                              "partition.assignment.strategy", "group.protocol.type")


def _check_tls_files(section: str, files: dict[str, str | None], cert: tuple[str, str | None],
                     key: tuple[str, str | None]) -> None:
    """TLS files must exist, and a certificate comes with its key."""
    for name, path in {**files, cert[0]: cert[1], key[0]: key[1]}.items():
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{section}.{name}: no such file: {path}")
    if (cert[1] is None) != (key[1] is None):
        raise ConfigError(f"{section}.{cert[0]} and {section}.{key[0]}: set both or neither")


def _check_cluster_url(url: str) -> None:
    """A Redis Cluster is reached over TCP and has only database 0."""
    if url.startswith("unix://"):
        raise ConfigError(f"redis.url: {redact_url(url)!r} is a unix socket; with "
                          "redis.cluster = true it must name a cluster node, redis://host:port")
    db = urlsplit(url).path.strip("/")
    if db not in ("", "0"):
        raise ConfigError(f"redis.url: {redact_url(url)!r} selects database {db}; a Redis "
                          "Cluster has only database 0 (redis.cluster = true)")


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where the front buffer lives.

    Attributes:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://`` for TLS.
        require_safe: refuse to start when Redis may evict keys or has no AOF.
        socket_timeout_s: per-command socket timeout.
        ssl_ca_certs: CA bundle (PEM) that signed the server's certificate, for
            ``rediss://`` URLs; the system's CAs when ``None``.
        ssl_certfile: client certificate (PEM), for a Redis that requires one
            (``tls-auth-clients yes``).
        ssl_keyfile: the client certificate's private key (PEM).
        cluster: ``url`` names one node (a seed) of a Redis Cluster: clients are
            redis-py's cluster clients, which learn the other nodes from it and
            follow MOVED and ASK redirections. Off: one Redis (the default).
        wait_replicas: producer durability, opt-in. Above 0, an enqueue returns
            only once Redis ``WAIT`` saw that many replicas of the queue's
            primary hold the jobs; fewer within ``wait_timeout_s`` fail the
            call with :class:`~jobpipe.errors.NotReplicated`. 0: the primary's
            reply is enough (the default; a fail-over may lose its last writes).
        wait_timeout_s: how long ``WAIT`` waits for the replicas.
    """

    url: str = f"redis://127.0.0.1:{DEFAULT_REDIS_PORT}/0"
    require_safe: bool = True
    socket_timeout_s: float = 5.0
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    cluster: bool = False
    wait_replicas: int = 0
    wait_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.wait_replicas < 0:
            raise ConfigError(f"redis.wait_replicas: must be >= 0, not {self.wait_replicas}")
        if self.wait_timeout_s <= 0 or (self.wait_replicas
                                        and self.wait_timeout_s >= self.socket_timeout_s):
            # A WAIT outliving the socket timeout would read as "Redis down" and be re-sent.
            raise ConfigError(f"redis.wait_timeout_s: must be > 0 and under "
                              f"redis.socket_timeout_s ({self.socket_timeout_s:g}), not "
                              f"{self.wait_timeout_s:g}")
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"redis.url: {redact_url(self.url)!r} is not a redis://, rediss:// "
                              "or unix:// URL")
        if self.cluster:
            _check_cluster_url(self.url)
        _check_tls_files("redis", {"ssl_ca_certs": self.ssl_ca_certs},
                         ("ssl_certfile", self.ssl_certfile), ("ssl_keyfile", self.ssl_keyfile))


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the durable log lives.

    ``acks=all`` and producer idempotence are enforced: jobpipe's guarantees
    rest on them, so ``config`` may not turn them off.

    Attributes:
        bootstrap: ``host:port[,host:port]``.
        replication_factor: of the topics ``jobpipe topics apply`` creates.
        min_insync_replicas: of those topics.
        group_protocol: ``classic`` (the default: a dead worker is noticed after
            ``session.timeout.ms`` 6 s, the lowest a broker allows out of the
            box) or ``consumer`` (KIP-848, Kafka 4.0+: the broker assigns and
            times members out after its ``group.consumer.session.timeout.ms``,
            45 s unless the brokers are configured; see docs/operations.md).
        config: librdkafka properties for every client (security, timeouts).
        producer: librdkafka properties for producers only.
        consumer: librdkafka properties for consumers only.
    """

    bootstrap: str = f"127.0.0.1:{DEFAULT_KAFKA_PORT}"
    replication_factor: int = 1
    min_insync_replicas: int = 1
    group_protocol: str = "classic"
    config: dict[str, str] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)
    consumer: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.replication_factor < 1 or self.min_insync_replicas < 1:
            raise ConfigError("kafka: replication_factor and min_insync_replicas must be >= 1")
        if self.min_insync_replicas > self.replication_factor:
            raise ConfigError("kafka.min_insync_replicas: cannot exceed replication_factor")
        for section in ("config", "producer"):
            for key in SAFETY_CRITICAL_KAFKA_KEYS:
                if key in getattr(self, section):
                    raise ConfigError(f"kafka.{section}.{key}: jobpipe enforces acks=all "
                                      "and idempotence; remove this key")
        if self.group_protocol not in GROUP_PROTOCOLS:
            raise ConfigError(f"kafka.group_protocol: must be 'consumer' or 'classic', not "
                              f"{self.group_protocol!r}")
        if self.group_protocol == "consumer":
            for section in ("config", "consumer"):
                for key in CLASSIC_ONLY_CONSUMER_KEYS:
                    if key in getattr(self, section):
                        raise ConfigError(
                            f"kafka.{section}.{key}: not allowed with group_protocol = "
                            "'consumer' (the broker's group.consumer.* settings rule it); "
                            "remove it or set group_protocol = 'classic'")


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """The Redis-to-Kafka bridge.

    Attributes:
        batch_size: jobs moved from one ready list per take.
        max_batches_in_flight: batches produced but not yet fully acknowledged.
        heartbeat_interval_s: how often a bridge renews its heartbeat.
        heartbeat_timeout_s: a bridge silent this long is presumed dead and its
            in-flight jobs are returned to the ready lists.
        delayed_interval_s: how often due delayed jobs are promoted.
        idle_wait_s: longest wait of an idle bridge; a push or a due delayed job
            wakes it at once (see :mod:`bridge.wake`), so this only bounds
            how long it sleeps with no work at all.
        linger_ms: Kafka producer batching delay while jobs pour in (above
            about 2,000 a second): takes in quick succession share requests,
            and the worker's fetches grow with them. A trickle's take is
            flushed at once (:mod:`bridge.pace`).
        compression: Kafka producer compression codec.
        log_interval_s: repeated trouble (broker down) is logged once per interval.
    """

    batch_size: int = 1000
    max_batches_in_flight: int = 8
    heartbeat_interval_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    delayed_interval_s: float = 0.02
    idle_wait_s: float = 1.0
    linger_ms: float = 3.0
    compression: str = "lz4"
    log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_batches_in_flight < 1:
            raise ConfigError("bridge: batch_size and max_batches_in_flight must be >= 1")
        if self.heartbeat_timeout_s <= 2 * self.heartbeat_interval_s:
            raise ConfigError("bridge.heartbeat_timeout_s: must exceed twice heartbeat_interval_s")
        if self.compression not in ("none", "lz4", "zstd", "snappy", "gzip"):
            raise ConfigError(f"bridge.compression: unknown codec {self.compression!r}")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The worker runtime.

    Attributes:
        concurrency: jobs running at once in one process.
        processes: worker processes (``--processes``).
        batch_max: messages taken from Kafka per poll.
        shutdown_timeout_s: on SIGTERM, how long in-flight jobs may finish.
        revoke_timeout_s: on a rebalance, how long revoked partitions' jobs may finish.
        commit_interval_s: how often completed offsets are committed.
        control_interval_s: how often pause flags are re-read.
        group_stuck_s: a consumer whose group membership has not settled for
            this long while the broker answers is replaced (a librdkafka client
            can stay stuck after its coordinator stopped answering for a while).
        membership: ``static`` (the default) or ``dynamic``. A static member
            (``group.instance.id``) that crashes and restarts takes its
            partitions straight back; a dynamic one waits for the dead member's
            session (6 s) before any partition moves, restarted or not. The
            trade-off: a static member that stops cleanly does not leave the
            group, so its partitions idle for the session unless it returns
            (scaling a fleet down pauses them 6 s). Without ``instance_id`` a
            static worker claims a name of its own on its host,
            ``<hostname>-<n>`` (:mod:`consumers.member_name`); should another
            host of the same hostname pick the same name, the member fenced
            goes on as a dynamic one and says so. ``dynamic``: no
            ``group.instance.id``, every stop leaves the group at once.
        instance_id: an explicit static member name, unique in the group and
            kept across restarts (a StatefulSet pod name), instead of the
            claimed one; ``--processes N`` children append ``-<index>``.
            Implies static membership.
    """

    concurrency: int = 256
    processes: int = 1
    batch_max: int = 1000
    shutdown_timeout_s: float = 30.0
    revoke_timeout_s: float = 10.0
    commit_interval_s: float = 1.0
    control_interval_s: float = 1.0
    group_stuck_s: float = 60.0
    membership: str = "static"
    instance_id: str | None = None

    def __post_init__(self) -> None:
        if self.group_stuck_s <= 0:
            raise ConfigError("worker.group_stuck_s: must be > 0")
        if self.concurrency < 1 or self.processes < 1 or self.batch_max < 1:
            raise ConfigError("worker: concurrency, processes and batch_max must be >= 1")
        if self.membership not in MEMBERSHIPS:
            raise ConfigError(f"worker.membership: must be 'static' or 'dynamic', not "
                              f"{self.membership!r}")
        if self.instance_id is not None and not self.instance_id.strip():
            raise ConfigError("worker.instance_id: must not be empty (leave it unset for "
                              "a name claimed on the host)")
        if self.instance_id is not None and self.membership == "dynamic":
            raise ConfigError("worker.instance_id: a member name is static membership, but "
                              "worker.membership is 'dynamic'; unset one of them")

    def process(self, index: int) -> WorkerSettings:
        """The settings of the ``index``-th of several worker processes: its own
        static member name (``<instance_id>-<index>``), when one is set (claimed
        names differ by themselves)."""
        if self.instance_id is None:
            return self
        return replace(self, instance_id=f"{self.instance_id}-{index}")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Producers and the HTTP intake server.

    Attributes:
        on_full: ``block`` (wait up to ``block_timeout_s``) or ``raise`` QueueFull.
        block_timeout_s: longest wait for room when ``on_full = "block"``.
        deadline_s: how long Redis errors are retried before IntakeUnavailable.
        spool_path: append-only file for jobs Redis could not take by the
            deadline; re-sent in order when Redis answers. ``None`` = off.
        http_host, http_port: where ``jobpipe ingest-server`` listens.
        http_tls_certfile, http_tls_keyfile: serve HTTPS with this certificate
            and key (PEM); plain HTTP when unset.
        tokens: bearer tokens the HTTP intake accepts (empty = no auth).
        max_request_bytes: HTTP request body cap, checked before parsing.
    """

    on_full: str = "raise"
    block_timeout_s: float = 5.0
    deadline_s: float = 10.0
    spool_path: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8700
    http_tls_certfile: str | None = None
    http_tls_keyfile: str | None = None
    tokens: tuple[str, ...] = ()
    max_request_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.on_full not in ("block", "raise"):
            raise ConfigError(f"ingest.on_full: must be 'block' or 'raise', not {self.on_full!r}")
        _check_tls_files("ingest", {}, ("http_tls_certfile", self.http_tls_certfile),
                         ("http_tls_keyfile", self.http_tls_keyfile))


def _default_topology() -> Topology:
    return Topology({"default": QueueSpec("default")})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a jobpipe process needs to know.

    Attributes:
        namespace: prefix of every Redis key and Kafka topic; lets several
            pipelines (or tests) share one Redis and one broker.
    """

    namespace: str = "jp"
    redis: RedisSettings = field(default_factory=RedisSettings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    topology: Topology = field(default_factory=_default_topology)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not names.is_valid_namespace(self.namespace):
            raise ConfigError(f"namespace: {self.namespace!r} must be 1-100 of [A-Za-z0-9_-]")
        for spec in self.schedules.values():
            queue = self.topology.queues.get(spec.queue)
            if queue is None:
                known = ", ".join(sorted(self.topology.queues))
                raise ConfigError(f"schedules.{spec.name}.queue: unknown queue {spec.queue!r} "
                                  f"(declared: {known})")
            if spec.priority is not None and not 0 <= spec.priority < len(queue.priorities):
                raise ConfigError(f"schedules.{spec.name}.priority: queue {spec.queue!r} has "
                                  f"levels 0..{len(queue.priorities) - 1}")


_SECTIONS: dict[str, type] = {
    "redis": RedisSettings,
    "kafka": KafkaSettings,
    "bridge": BridgeSettings,
    "worker": WorkerSettings,
    "ingest": IngestSettings,
}
T = TypeVar("T")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check (and gently convert) one value against a field's type hint."""
    if hint is Any:
        return value  # a job's args: any TOML value
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (value == NONE and options[0] is not str):
            return None
        return _coerce(value, options[0], where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        item = typing.get_args(hint)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        item = typing.get_args(hint)[1]
        return {str(k): _coerce(_property_text(v) if item is str else v, item, f"{where}.{k}")
                for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return value


def _property_text(value: Any) -> Any:
    """librdkafka properties are strings; TOML may say ``10000`` or ``1.5``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def build(cls: type[T], data: dict[str, Any], where: str, base: T | None = None) -> T:
    """Build (or update ``base`` of) a settings dataclass from a mapping.

    Raises:
        ConfigError: naming ``where`` and the key, for unknown keys, wrong
            types and invalid values.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        values[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        if base is not None:
            return replace(base, **values)  # type: ignore[type-var]
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


#: ``JOBPIPE_*`` variables that are not settings fields, and what reads them.
OTHER_VARIABLES = {
    "JOBPIPE_CONFIG": "the settings file (find_config)",
    "JOBPIPE_METRICS_HOST": "the /metrics listen address (jobpipe.metrics)",
    "JOBPIPE_APP": "the handler module of docker/compose.yml's workers",
}


def _env_value(cls: type, key: str, raw: str) -> Any:
    hint = typing.get_type_hints(cls)[key]
    if hint is str or hint == str | None:
        return raw  # text as given: JOBPIPE_INGEST_SPOOL_PATH=2024 is a path, not a number
    return _parse_env_value(raw)


def _env_overrides(environ: typing.Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for var, raw in environ.items():
        if not var.startswith("JOBPIPE_") or var in OTHER_VARIABLES:
            continue
        if var == "JOBPIPE_NAMESPACE":
            tree["namespace"] = raw
            continue
        section, _, key = var[len("JOBPIPE_"):].lower().partition("_")
        cls = _SECTIONS.get(section)
        if cls is None or not key:
            sections = ", ".join(s.upper() for s in _SECTIONS)
            raise ConfigError(f"environment: {var} is not a jobpipe setting (settings are "
                              f"JOBPIPE_NAMESPACE and JOBPIPE_<SECTION>_<KEY>, SECTION one of "
                              f"{sections}; other variables: {', '.join(OTHER_VARIABLES)})")
        known = {f.name for f in fields(cls)}
        if key not in known:
            raise ConfigError(f"environment: {var}: unknown key {key!r} of [{section}] "
                              f"(known: {', '.join(sorted(known))})")
        tree.setdefault(section, {})[key] = _env_value(cls, key, raw)
    return tree


def find_config(path: str | Path | None, environ: typing.Mapping[str, str]) -> Path | None:
    """The settings file to read: the flag, then ``$JOBPIPE_CONFIG``, then ``./jobpipe.toml``."""
    if path is not None:
        return Path(path)
    if environ.get("JOBPIPE_CONFIG"):
        return Path(environ["JOBPIPE_CONFIG"])
    local = Path("jobpipe.toml")
    return local if local.exists() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a settings file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings file: "
                          f"{exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _apply(settings: Settings, tree: dict[str, Any], where: str) -> Settings:
    changes: dict[str, Any] = {}
    for section, body in tree.items():
        if section == "namespace":
            changes["namespace"] = _coerce(body, str, f"{where}: namespace")
        elif section == "queues":
            changes["topology"] = Topology(_named_tables(QueueSpec, section, body, where))
        elif section == "schedules":
            changes["schedules"] = _named_tables(ScheduleSpec, section, body, where)
        elif section in _SECTIONS:
            if not isinstance(body, dict):
                raise ConfigError(f"{where}: [{section}] must be a table")
            current = getattr(settings, section)
            changes[section] = build(_SECTIONS[section], body, f"{where}: {section}", current)
        else:
            known = ", ".join(["namespace", "queues", "schedules", *_SECTIONS])
            raise ConfigError(f"{where}: unknown section {section!r} (known: {known})")
    try:
        return replace(settings, **changes)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _named_tables(cls: type[T], section: str, body: Any, where: str) -> dict[str, T]:
    """``[section.NAME]`` tables (queues, schedules), each built with its name."""
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: [{section}] must be a table of tables")
    found = {}
    for name, table in body.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section}.{name} must be a table")
        found[name] = build(cls, {"name": name, **table}, f"{where}: {section}.{name}")
    return found


def load_settings(
    path: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: typing.Mapping[str, str] | None = None,
) -> Settings:
    """Load settings with the precedence in this module's docstring.

    Args:
        path: a ``jobpipe.toml``; see :func:`find_config` when ``None``.
        overrides: highest-precedence values, shaped like the TOML file
            (``{"bridge": {"batch_size": 500}}``).
        environ: the environment (``os.environ`` when ``None``).

    Raises:
        ConfigError: one line naming the file (or variable) and the key.
    """
    env = os.environ if environ is None else environ
    settings = Settings()
    config = find_config(path, env)
    if config is not None:
        settings = _apply(settings, _read_toml(config), str(config))
    settings = _apply(settings, _env_overrides(env), "environment")
    if overrides:
        settings = _apply(settings, overrides, "flags")
    return settings

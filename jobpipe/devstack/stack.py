"""The dev stack: one Redis and one (or three) Kafka nodes, owned by PID file.

Everything lives under ``root`` (``.jobpipe/`` by default)::

    root/stack.json                       ports and broker count of the last ``up``
    root/redis/{redis.conf,redis.pid,redis.log,data/}
    root/redis-cluster-<N>/node<port>/    one per node of a Redis Cluster (``redis_cluster=N``)
    root/kafka/cluster-<N>/cluster.id     one id per layout, kept for re-use
    root/kafka/cluster-<N>/node<i>/{server.properties,kafka.pid,started.json,logs/,data/}

``up`` is idempotent: processes recorded in PID files whose command line still
matches are reused. ``down`` stops exactly those PIDs. Several stacks (the
default one, a test's private one) run side by side on different ports.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobpipe.devstack.certs import TlsFiles
from jobpipe.devstack.kafka_broker import ExtraListener, KafkaLayout
from jobpipe.devstack.kafka_cluster import KafkaCluster
from jobpipe.devstack.processes import OwnedProcess, rss_bytes, stop_all
from jobpipe.devstack.redis_cluster import LocalRedisCluster, node_role
from jobpipe.devstack.redis_server import RedisConfig, RedisServer
from jobpipe.devstack.tools import require_tools
from jobpipe.errors import StackError

DEFAULT_REDIS_PORT = 16379
DEFAULT_KAFKA_PORT = 19092


def stack_env(redis_url: str, kafka_bootstrap: str, redis_cluster: bool) -> dict[str, str]:
    """The environment variables pointing jobpipe (and the tests) at a stack."""
    env = {"JOBPIPE_REDIS_URL": redis_url}
    if redis_cluster:
        env["JOBPIPE_REDIS_CLUSTER"] = "true"  # redis.cluster: the URL is one node, a seed
    env["JOBPIPE_KAFKA_BOOTSTRAP"] = kafka_bootstrap
    return env


@dataclass(frozen=True)
class StackInfo:
    """Where a running stack answers.

    Attributes:
        kafka_start_s: seconds from starting the JVMs to metadata answering,
            when this ``up`` started Kafka; the last recorded figure otherwise.
        started: what this ``up`` started (empty when everything ran already).
    """

    root: Path
    redis_url: str
    kafka_bootstrap: str
    redis_pid: int
    kafka_pids: tuple[int, ...]
    kafka_start_s: float | None
    started: tuple[str, ...] = ()
    redis_cluster_pids: tuple[int, ...] = ()

    def env(self) -> dict[str, str]:
        """The environment variables pointing jobpipe (and the tests) at this stack."""
        return stack_env(self.redis_url, self.kafka_bootstrap, bool(self.redis_cluster_pids))


@dataclass(frozen=True)
class ProcessStatus:
    """One process of the stack, as ``jobpipe dev status`` shows it."""

    name: str
    address: str
    pid: int | None
    rss_bytes: int | None = None
    start_s: float | None = None
    role: str | None = None

    @property
    def alive(self) -> bool:
        """Whether it runs."""
        return self.pid is not None


class DevStack:
    """A local Redis and Kafka for development and tests, no Docker needed.

    Args:
        root: directory holding config, data, logs and PID files.
        redis_port: Redis's loopback port; with ``redis_cluster``, the first
            node's (the nodes use ``2 * redis_cluster`` ports from it, and the
            same block + 10000 for the cluster bus).
        kafka_port: node 1's client port; node n uses ``kafka_port + 2*(n-1)``
            and the port after it for its controller.
        brokers: 1, or 3 for a replicated cluster (replication 3, min ISR 2).
        libs_dir: Kafka jars (default: the shared cache, fetched once by Maven).
        redis_appendfsync: ``everysec`` or ``always``.
        redis_maxmemory_bytes: Redis memory cap (None = unlimited).
        redis_extra_config: more ``redis.conf`` lines (``requirepass``, ``user``...).
        kafka_heap: JVM ``-Xmx`` per node (default 1g, 512m with three nodes).
        kafka_extra_properties: ``server.properties`` entries added or overridden.
        kafka_extra_listeners: more listeners (e.g. SASL) on every node.
        tls: certificates (see :func:`jobpipe.devstack.certs.make_test_pki`):
            Redis then serves TLS only (``rediss://``, client certificate
            required) and Kafka's SSL and SASL_SSL listeners use them.
        redis_cluster: 0 for one Redis, else that many primaries of a Redis
            Cluster (3 or more), each with one replica.
        tool_path: ``PATH`` to find redis-server, java and mvn on.
        start_timeout_s: longest wait for a service to answer.
    """

    def __init__(self, root: Path | str, redis_port: int = DEFAULT_REDIS_PORT,
                 kafka_port: int = DEFAULT_KAFKA_PORT, brokers: int = 1,
                 libs_dir: Path | None = None, *, redis_appendfsync: str = "everysec",
                 redis_maxmemory_bytes: int | None = None,
                 redis_extra_config: Sequence[str] = (), kafka_heap: str | None = None,
                 kafka_extra_properties: dict[str, str] | None = None,
                 kafka_extra_listeners: Sequence[ExtraListener] = (),
                 tls: TlsFiles | None = None, redis_cluster: int = 0,
                 tool_path: str | None = None, start_timeout_s: float = 120.0) -> None:
        self.root = Path(root).resolve()
        self.tool_path = tool_path
        self.start_timeout_s = start_timeout_s
        self.redis_config = RedisConfig(redis_port, redis_appendfsync, redis_maxmemory_bytes,
                                        tuple(redis_extra_config), tls)
        self.layout = KafkaLayout(kafka_port, brokers,
                                  kafka_heap or ("1g" if brokers == 1 else "512m"),
                                  dict(kafka_extra_properties or {}),
                                  tuple(kafka_extra_listeners), tls)
        self.redis = RedisServer(self.root / "redis", self.redis_config)
        self.redis_cluster = (
            LocalRedisCluster(self.root / f"redis-cluster-{redis_cluster}", redis_port,
                              redis_cluster, appendfsync=redis_appendfsync,
                              start_timeout_s=start_timeout_s)
            if redis_cluster else None)
        self.kafka = KafkaCluster(self.root / "kafka" / f"cluster-{brokers}", self.layout,
                                  libs_dir, tool_path, start_timeout_s)

    @classmethod
    def load(cls, root: Path | str, *, redis_port: int | None = None,
             kafka_port: int | None = None, brokers: int | None = None,
             redis_cluster: int | None = None, **options: Any) -> DevStack:
        """The stack under ``root`` with the ports (and layout) of its last ``up``, unless
        given."""
        manifest: dict[str, int] = {}
        path = Path(root) / "stack.json"
        if path.exists():
            manifest = json.loads(path.read_text())
        return cls(root,
                   redis_port or manifest.get("redis_port", DEFAULT_REDIS_PORT),
                   kafka_port or manifest.get("kafka_port", DEFAULT_KAFKA_PORT),
                   brokers or manifest.get("brokers", 1),
                   redis_cluster=(redis_cluster if redis_cluster is not None
                                  else manifest.get("redis_cluster", 0)),
                   **options)

    # --- addresses -----------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (a Redis Cluster's first node: a seed)."""
        if self.redis_cluster is not None:
            return self.redis_cluster.url
        return self.redis.url

    @property
    def kafka_bootstrap(self) -> str:
        """Every node's client address, comma separated."""
        return self.layout.bootstrap

    def env(self) -> dict[str, str]:
        """The environment variables pointing jobpipe (and the tests) at this stack."""
        return stack_env(self.redis_url, self.kafka_bootstrap, self.redis_cluster is not None)

    @property
    def redis_pid(self) -> int | None:
        """PID of our running Redis, or None."""
        return self.redis.process.pid

    @property
    def kafka_pid(self) -> int | None:
        """PID of our running Kafka node 1, or None."""
        return self.kafka.nodes[1].process.pid

    @property
    def redis_pids(self) -> dict[str, int | None]:
        """PID of each Redis process by name: ``redis``, or ``redis-<port>`` per node of
        a Redis Cluster (None where it does not run)."""
        if self.redis_cluster is not None:
            return {f"redis-{port}": process.pid for port, process
                    in zip(self.redis_cluster.ports, self.redis_cluster.processes, strict=True)}
        return {"redis": self.redis_pid}

    @property
    def kafka_pids(self) -> dict[int, int | None]:
        """PID of each Kafka node (None where it does not run)."""
        return {n: node.process.pid for n, node in self.kafka.nodes.items()}

    # --- lifecycle -----------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _manifest(self) -> dict[str, int]:
        manifest = {"redis_port": self.redis_config.port, "kafka_port": self.layout.kafka_port,
                    "brokers": self.layout.brokers}
        if self.redis_cluster is not None:
            manifest["redis_cluster"] = self.redis_cluster.primaries
        return manifest

    def _owned(self) -> list[OwnedProcess]:
        """Every process of ours under root, whatever layout started it."""
        found = [OwnedProcess("redis", self.root / "redis" / "redis.pid")]
        for pid_file in sorted(self.root.glob("redis-cluster-*/node*/redis.pid")):
            found.append(OwnedProcess(pid_file.parent.name.replace("node", "redis-"), pid_file))
        for pid_file in sorted(self.root.glob("kafka/cluster-*/node*/kafka.pid")):
            name = pid_file.parent.name.replace("node", "kafka-")
            found.append(OwnedProcess(name, pid_file))
        return found

    def up(self) -> StackInfo:
        """Start whatever is not running yet and wait until everything answers.

        Raises:
            StackError: a tool is missing, a port is taken, a different stack
                runs under the same root, or a service did not come up.
        """
        with self._locked():
            manifest_path = self.root / "stack.json"
            if manifest_path.exists() and any(p.alive for p in self._owned()):
                running = json.loads(manifest_path.read_text())
                if running != self._manifest():
                    raise StackError(f"a dev stack with other ports runs under {self.root} "
                                     f"({running}); run `jobpipe dev down` first")
            needed = ["redis-server", "java"] + (["redis-cli"] if self.redis_cluster else [])
            tools = require_tools(needed, self.tool_path)
            self.redis.executable, self.kafka.java = tools["redis-server"], tools["java"]
            self.kafka.ensure_jars()
            manifest_path.write_text(json.dumps(self._manifest()))
            before = {p.name: p.pid for p in self._owned()}
            if self.redis_cluster is not None:
                self.redis_cluster.start(tools["redis-server"], tools["redis-cli"])
            else:
                self.redis.start(self.start_timeout_s)
            start_s = self.start_kafka()
            started = tuple(p.name for p in self._owned()
                            if p.pid is not None and before.get(p.name) is None)
        cluster_pids = tuple(p.pid or 0 for p in self.redis_cluster.processes
                             ) if self.redis_cluster is not None else ()
        return StackInfo(self.root, self.redis_url, self.kafka_bootstrap,
                         self.redis_pid or 0, tuple(p or 0 for p in self.kafka_pids.values()),
                         start_s if start_s is not None else self.kafka.recorded_start_s(1),
                         started, cluster_pids)

    def down(self, timeout_s: float = 30.0) -> list[str]:
        """Stop exactly the processes this root's PID files name (Kafka first).

        Returns:
            The names of the processes that were running and were stopped.
        """
        with self._locked():
            owned = self._owned()
            kafka = [p for p in owned if p.name.startswith("kafka")]
            redis = [p for p in owned if not p.name.startswith("kafka")]
            stopped = [p.name for p in kafka if p.alive]
            stop_all(kafka, timeout_s)
            self.kafka.adopt_class_archives()
            stopped += [p.name for p in redis if p.alive]
            stop_all(redis, timeout_s)
        return stopped

    def status(self) -> list[ProcessStatus]:
        """What runs where: Redis (or each Redis Cluster node, with its role), then each
        Kafka node."""
        if self.redis_cluster is not None:
            out = [self._status(node.process.name, f"127.0.0.1:{node.config.port}",
                                node.process, None, node_role(node.config.port))
                   for node in self.redis_cluster.nodes]
        else:
            out = [self._status("redis", f"127.0.0.1:{self.redis_config.port}",
                                self.redis.process, None)]
        for n, node in self.kafka.nodes.items():
            out.append(self._status(f"kafka-{n}", f"127.0.0.1:{node.port}", node.process,
                                    self.kafka.recorded_start_s(n)))
        return out

    @staticmethod
    def _status(name: str, address: str, proc: OwnedProcess,
                start_s: float | None, role: str | None = None) -> ProcessStatus:
        pid = proc.pid
        return ProcessStatus(name, address, pid, rss_bytes(pid) if pid else None, start_s,
                             role if pid else None)

    # --- Kafka ------------------------------------------------------------------

    def start_kafka(self, node: int | None = None) -> float | None:
        """Start one node (or every node that is down) and wait until it serves metadata.

        Returns:
            Seconds from spawning the JVMs to ready, or None when all ran already.
        """
        self.kafka.java = require_tools(["java"], self.tool_path)["java"]
        return self.kafka.start(node)

    def stop_kafka(self, node: int = 1, timeout_s: float = 30.0) -> bool:
        """SIGTERM a node (a clean shutdown), SIGKILL after ``timeout_s``."""
        return self.kafka.stop(node, timeout_s)

    def kill_kafka(self, node: int = 1) -> bool:
        """SIGKILL a node: it recovers its log on the next start."""
        return self.kafka.kill(node)

    def freeze_kafka(self, node: int = 1) -> bool:
        """SIGSTOP a node: its sockets stay open but it answers nothing."""
        return self.kafka.freeze(node)

    def thaw_kafka(self, node: int = 1) -> bool:
        """SIGCONT a frozen node."""
        return self.kafka.thaw(node)

    # --- Redis ---------------------------------------------------------------------

    def start_redis(self) -> bool:
        """Start Redis if it is down (it replays its AOF); True when it was started."""
        self.redis.executable = require_tools(["redis-server"], self.tool_path)["redis-server"]
        return self.redis.start(self.start_timeout_s)

    def kill_redis(self) -> bool:
        """SIGKILL Redis: writes not yet fsynced to the AOF are lost."""
        return self.redis.kill()

    def stop_redis(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM Redis (it fsyncs and exits cleanly)."""
        return self.redis.stop(timeout_s)


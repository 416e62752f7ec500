"""Apache Kafka in KRaft mode from its Maven jars: one or three combined nodes.

Node ``n`` (1-based) listens for clients on ``kafka_port + 2*(n-1)`` and for the
controller quorum on the port after it, all on 127.0.0.1. The quorum is static
(``controller.quorum.voters``), as in the official Docker image, so storage is
formatted without ``--standalone``.

The properties aim at a small, quick, strict dev broker: internal topics with
one partition and the cluster's replication (3 with min ISR 2 on three nodes,
else 1), no automatic topic creation (topics come from the topology through
:mod:`jobpipe.admin`, so a typo fails instead of creating a topic), no initial
rebalance delay (a test's consumer joins at once), few threads and a small
cleaner buffer (a 2-core machine), and logs kept one day in 128 MiB segments.

The broker's JVM honours the variables of Kafka's own start scripts, read
when it starts: ``KAFKA_JVM_PERFORMANCE_OPTS`` replaces the collector options
(G1, 20 ms pause goal) and ``KAFKA_OPTS`` adds options, e.g.
``KAFKA_OPTS=-Xlog:gc:file=gc-%p.log`` (one file per JVM, in the working
directory).
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobpipe.devstack import class_archive
from jobpipe.devstack.certs import TlsFiles
from jobpipe.devstack.ports import port_answers, port_is_free
from jobpipe.devstack.processes import OwnedProcess
from jobpipe.errors import StackError

_LOG4J2 = """status = warn
name = jobpipe-dev-kafka
property.dir = ${sys:kafka.logs.dir:-.}
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${dir}/server.log
appender.file.filePattern = ${dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
logger.lifecycle.name = kafka.server.BrokerLifecycleManager
logger.lifecycle.level = INFO
"""
_TOOLS_LOG4J2 = """status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
"""


# KIP-848 consumer groups (kafka.group_protocol = "consumer", opt-in): the broker
# notices a killed worker after this session timeout and hands its partitions
# over on the survivors' next heartbeat. Kafka's defaults (45 s, 5 s, with
# minimums equal to them) would leave a killed worker's jobs waiting most of a
# minute; docs/operations.md has the same settings for a production cluster. The
# lower minimums let one group be tuned further (a group-level config).
CONSUMER_GROUP_PROPERTIES = {
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.heartbeat.interval.ms": "1000",
    "group.consumer.min.session.timeout.ms": "2000",
    "group.consumer.min.heartbeat.interval.ms": "500",
}
# A node restarted after kill -9 may register again only once its controller
# has given up on the old registration's session. Kafka's 9 s (heartbeats every
# 2 s) made such a restart take 14.5 s on the build box, 7 s with 3 s; that is
# also how soon one of three nodes that died is fenced.
BROKER_SESSION_PROPERTIES = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


def new_cluster_id() -> str:
    """A cluster id shaped like Kafka's: 22 URL-safe base64 characters, no leading ``-``."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class ExtraListener:
    """One more listener on every node, e.g. ``SASL`` with ``SASL_PLAINTEXT``
    (``SSL`` and ``SASL_SSL`` ones need :attr:`KafkaLayout.tls`).

    Attributes:
        name: listener name (``[A-Z_]``).
        protocol: security protocol.
        port: its port on node 1; node n uses ``port + 2*(n-1)``.
    """

    name: str
    protocol: str
    port: int


@dataclass(frozen=True)
class KafkaLayout:
    """Where the nodes of one dev cluster listen and how they are configured.

    Attributes:
        kafka_port: node 1's client (PLAINTEXT) port.
        brokers: 1 or 3 combined broker+controller nodes.
        heap: JVM ``-Xmx`` of each node.
        extra_properties: ``server.properties`` entries added or overridden.
        extra_listeners: more listeners (SASL...) on every node.
        tls: the certificates of the SSL and SASL_SSL listeners (PEM key and
            trust stores); the PLAINTEXT and CONTROLLER listeners stay plain.
    """

    kafka_port: int
    brokers: int = 1
    heap: str = "1g"
    extra_properties: dict[str, str] = field(default_factory=dict)
    extra_listeners: tuple[ExtraListener, ...] = ()
    tls: TlsFiles | None = None

    def __post_init__(self) -> None:
        if self.brokers not in (1, 3):
            raise StackError(f"kafka: brokers must be 1 or 3, not {self.brokers}")

    @property
    def nodes(self) -> range:
        """Node ids, from 1."""
        return range(1, self.brokers + 1)

    @property
    def ports_needed(self) -> int:
        """How many consecutive ports from ``kafka_port`` the nodes take."""
        return 2 * self.brokers

    def client_port(self, node: int) -> int:
        """The PLAINTEXT port of ``node``."""
        return self.kafka_port + 2 * (node - 1)

    def controller_port(self, node: int) -> int:
        """The CONTROLLER port of ``node``."""
        return self.client_port(node) + 1

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma separated."""
        return ",".join(f"127.0.0.1:{self.client_port(n)}" for n in self.nodes)

    def server_properties(self, node: int, data_dir: Path) -> str:
        """The ``server.properties`` text of ``node``."""
        port, ctl = self.client_port(node), self.controller_port(node)
        extra = [(x.name, x.protocol, x.port + 2 * (node - 1)) for x in self.extra_listeners]
        listeners = [f"PLAINTEXT://127.0.0.1:{port}", f"CONTROLLER://127.0.0.1:{ctl}",
                     *(f"{name}://127.0.0.1:{p}" for name, _, p in extra)]
        advertised = [f"PLAINTEXT://127.0.0.1:{port}",
                      *(f"{name}://127.0.0.1:{p}" for name, _, p in extra)]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT",
                     *(f"{name}:{proto}" for name, proto, _ in extra)]
        replicas, isr = (3, 2) if self.brokers == 3 else (1, 1)
        voters = ",".join(f"{n}@127.0.0.1:{self.controller_port(n)}" for n in self.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(data_dir),
            "offsets.topic.replication.factor": str(replicas),
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(isr),
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": str(replicas),
            "share.coordinator.state.topic.min.isr": str(isr),
            "share.coordinator.state.topic.num.partitions": "1",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(isr),
            "group.initial.rebalance.delay.ms": "0",
            **CONSUMER_GROUP_PROPERTIES,
            **BROKER_SESSION_PROPERTIES,
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "group.coordinator.threads": "1",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": "16777216",
            "log.retention.hours": "24",
            "log.segment.bytes": "134217728",
            **self._tls_properties(),
            **self.extra_properties,
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _tls_properties(self) -> dict[str, str]:
        if self.tls is None:
            return {}
        # Kafka reads PEM directly (KIP-651): no keytool, no JKS passwords.
        return {"ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(self.tls.server_bundle),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.tls.ca)}


DEFAULT_JVM_PERFORMANCE_OPTS = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")


def jvm_options(environ: Mapping[str, str]) -> list[str]:
    """The collector and extra JVM options, as Kafka's ``kafka-run-class.sh`` takes them."""
    performance = environ.get("KAFKA_JVM_PERFORMANCE_OPTS")
    return [*(shlex.split(performance) if performance else DEFAULT_JVM_PERFORMANCE_OPTS),
            *shlex.split(environ.get("KAFKA_OPTS", ""))]


class KafkaNode:
    """One combined broker+controller JVM, its files under ``home``."""

    def __init__(self, home: Path, layout: KafkaLayout, node: int, libs_dir: Path,
                 java: str = "java") -> None:
        self.home = home
        self.layout = layout
        self.node = node
        self.libs_dir = libs_dir
        self.java = java
        self.process = OwnedProcess(f"kafka-{node}", home / "kafka.pid")

    @property
    def port(self) -> int:
        """Client (PLAINTEXT) port."""
        return self.layout.client_port(self.node)

    @property
    def properties_path(self) -> Path:
        """This node's ``server.properties``."""
        return self.home / "server.properties"

    @property
    def logs_dir(self) -> Path:
        """``server.log`` and ``broker.out`` live here."""
        return self.home / "logs"

    @property
    def written_archive(self) -> Path:
        """Where this node's JVM writes a class archive as it exits (see class_archive)."""
        return self.home / class_archive.WRITTEN_NAME

    def adopt_archive(self) -> None:
        """Share the class archive this node's JVM wrote at its exit (it must be gone)."""
        class_archive.adopt(self.written_archive)

    def _archive_options(self, write: bool) -> list[str]:
        """Read the shared class archive, or (``write``) write one at exit; none when
        the user's own options already choose a class-data archive."""
        user = jvm_options(os.environ)
        if any("SharedArchiveFile" in o or "ArchiveClassesAtExit" in o or o.startswith("-Xshare")
               for o in user):
            return []
        archive = class_archive.archive_path(self.libs_dir, self.java, user)
        if not write:
            return class_archive.archive_options(archive, None)
        options = class_archive.archive_options(archive, self.written_archive)
        if not archive.exists():
            class_archive.note_writer(self.written_archive, archive, self.java, user,
                                      self._classpath)
        return options

    @property
    def _classpath(self) -> str:
        return f"{self.libs_dir}/*"

    def _java_args(self, main: str, *args: str, heap: tuple[str, ...], log4j: str,
                   archive: list[str]) -> list[str]:
        return [self.java, *heap, *archive, *jvm_options(os.environ),
                "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.logs_dir}",
                f"-Dlog4j2.configurationFile={self.home / log4j}",
                "-cp", self._classpath, main, *args]

    def prepare(self, cluster_id: str) -> subprocess.Popen[bytes] | None:
        """Write the config files and, the first time only, start formatting storage.

        Returns:
            The format process to wait on, or None when storage was formatted before.
        """
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        self.properties_path.write_text(self.layout.server_properties(self.node, data))
        (self.home / "log4j2.properties").write_text(_LOG4J2)
        (self.home / "tools-log4j2.properties").write_text(_TOOLS_LOG4J2)
        if (data / "meta.properties").exists():
            return None
        args = self._java_args("kafka.tools.StorageTool", "format", "-g", "-t", cluster_id,
                               "-c", str(self.properties_path), heap=("-Xmx256m",),
                               log4j="tools-log4j2.properties",
                               archive=self._archive_options(write=False))
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def spawn(self) -> None:
        """Start the node's JVM (readiness is :meth:`wait_ready`).

        Raises:
            StackError: one of its ports is taken by another process.
        """
        for port in (self.port, self.layout.controller_port(self.node)):
            if not port_is_free(port):
                raise StackError(f"kafka-{self.node}: port {port} is in use by another "
                                 "process; pick another with --kafka-port")
        self.adopt_archive()  # one its last run left, if any
        args = self._java_args("kafka.Kafka", str(self.properties_path),
                               heap=("-Xms256m", f"-Xmx{self.layout.heap}",),
                               log4j="log4j2.properties",
                               archive=self._archive_options(write=True))
        self.process.spawn(args, self.logs_dir / "broker.out",
                           match=[("kafka.Kafka", str(self.properties_path))])

    def wait_port(self, deadline: float) -> None:
        """Wait until the client port accepts connections.

        Kafka opens it only once the broker caught up with metadata and was
        unfenced, so an open port means ready for clients.

        Raises:
            StackError: the JVM exited (with the end of its logs) or time ran out.
        """
        while not port_answers(self.port):
            if not self.process.alive:
                raise StackError(f"kafka-{self.node} exited at start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise StackError(f"kafka-{self.node} did not open port {self.port} in time; "
                                 f"see {self.logs_dir}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        """The last meaningful lines of ``broker.out`` and ``server.log``, on one line."""
        lines: list[str] = []
        for name in ("broker.out", "server.log"):
            path = self.logs_dir / name
            if path.exists():
                lines += [ln.strip() for ln in path.read_text(errors="replace").splitlines()
                          if "ERROR" in ln or "Exception" in ln][-2:]
        return " | ".join(lines)[-600:] or f"see {self.logs_dir}"

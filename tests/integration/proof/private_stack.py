"""A private Redis and Kafka for one chaos test, which it may kill, freeze and restart.

Uses ``jobpipe.devstack.DevStack`` when it offers the kill/start helpers, and
otherwise starts ``redis-server`` and a KRaft broker (``java -cp <jars>``)
itself, on free loopback ports, under the test's tmp dir. Every process is
ended by its PID, never by name.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

KAFKA_JARS = Path(os.environ.get("JOBPIPE_KAFKA_JARS", "/tmp/kafkalibs"))

_LOG4J = """status = warn
appender.f.type = File
appender.f.name = F
appender.f.fileName = ${sys:kafka.logs.dir}/server.log
appender.f.layout.type = PatternLayout
appender.f.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.f.ref = F
"""


def free_port() -> int:
    """A TCP port nothing listens on now (and, usually, the next one too)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not listening on {port} in {timeout_s}s") from None
            time.sleep(0.1)


def stack_available() -> str | None:
    """Why a private stack cannot run here, or None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if shutil.which("java") is None:
        return "java is not installed"
    if not any(KAFKA_JARS.glob("kafka_2.13-*.jar")):
        return f"no Kafka jars in {KAFKA_JARS} (set JOBPIPE_KAFKA_JARS)"
    return None


class PrivateStack:
    """One redis-server and one single-node Kafka owned by a test."""

    def __init__(self, root: Path, *, appendfsync: str = "everysec",
                 maxmemory_bytes: int | None = None) -> None:
        self.root = root
        self.redis_port = free_port()
        self.kafka_port = free_port()
        self.appendfsync = appendfsync
        self.maxmemory_bytes = maxmemory_bytes
        self.redis: subprocess.Popen[bytes] | None = None
        self.kafka: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def up(self) -> PrivateStack:
        self.start_redis()
        self.start_kafka()
        return self

    def down(self) -> None:
        for proc in (self.redis, self.kafka):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(30)
        self.redis = self.kafka = None

    # --- Redis ---------------------------------------------------------------------

    def start_redis(self) -> None:
        data = self.root / "redis"
        data.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--dir", str(data), "--appendonly", "yes", "--appendfsync", self.appendfsync,
                "--maxmemory-policy", "noeviction", "--save", "", "--daemonize", "no",
                "--logfile", str(data / "redis.log")]
        if self.maxmemory_bytes is not None:
            args += ["--maxmemory", str(self.maxmemory_bytes)]
        self.redis = subprocess.Popen(args, start_new_session=True)
        _wait_port(self.redis_port, self.redis, 30, "redis-server")
        self._wait_redis_loaded()

    def _wait_redis_loaded(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def kill_redis(self) -> None:
        """kill -9: what was not yet fsynced to the AOF is gone."""
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait(30)
        self.redis = None

    # --- Kafka ---------------------------------------------------------------------

    def _java(self, main: str, *args: str, heap: str = "-Xmx256m") -> list[str]:
        home = self.root / "kafka"
        return ["java", heap, "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", f"-Dkafka.logs.dir={home}/logs",
                f"-Dlog4j2.configurationFile={home}/log4j2.properties",
                "-cp", f"{KAFKA_JARS}/*", main, *args]

    def _write_kafka_config(self) -> Path:
        home = self.root / "kafka"
        (home / "logs").mkdir(parents=True, exist_ok=True)
        controller = self.kafka_port + 1
        props = home / "server.properties"
        props.write_text("\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller}",
            "controller.listener.names=CONTROLLER",
            f"listeners=PLAINTEXT://127.0.0.1:{self.kafka_port},"
            f"CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.kafka_port}",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={home}/data",
            "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "share.coordinator.state.topic.num.partitions=1",
            "min.insync.replicas=1", "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false", "num.network.threads=2", "num.io.threads=2",
            "background.threads=2", "num.recovery.threads.per.data.dir=1",
            "group.coordinator.threads=1", "log.cleaner.threads=1",
            "log.cleaner.dedupe.buffer.size=16777216", ""]))
        (home / "log4j2.properties").write_text(_LOG4J)
        return props

    def start_kafka(self, timeout_s: float = 120.0) -> None:
        props = self._write_kafka_config()
        home = self.root / "kafka"
        if not self._formatted:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            cluster_id = "A" + cluster_id[1:]  # never starts with '-'
            subprocess.run(self._java("kafka.tools.StorageTool", "format", "-g", "-t",
                                      cluster_id, "-c", str(props)),
                           check=True, capture_output=True, timeout=120)
            self._formatted = True
        out = (home / "logs" / "broker.out").open("ab")
        self.kafka = subprocess.Popen(self._java("kafka.Kafka", str(props), heap="-Xmx512m"),
                                      stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        out.close()
        _wait_port(self.kafka_port, self.kafka, timeout_s, "kafka")

    def kill_kafka(self) -> None:
        """kill -9 the broker (it recovers its log on the next start)."""
        assert self.kafka is not None
        self.kafka.kill()
        self.kafka.wait(30)
        self.kafka = None

    def freeze_kafka(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing."""
        assert self.kafka is not None
        os.kill(self.kafka.pid, signal.SIGSTOP)

    def thaw_kafka(self) -> None:
        assert self.kafka is not None
        os.kill(self.kafka.pid, signal.SIGCONT)

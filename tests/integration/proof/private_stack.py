"""A private Redis and Kafka for one chaos test, which it may kill, freeze and restart.

A thin adapter over :class:`jobpipe.devstack.DevStack` on free loopback ports
under the test's tmp dir. Kafka jars come from ``$JOBPIPE_KAFKA_JARS`` or
``/tmp/kafkalibs`` when they hold a broker jar, else from the dev stack's
shared cache (fetched once by Maven). Every process is ended by its PID.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from jobpipe.devstack import DevStack
from jobpipe.devstack.kafka_jars import default_libs_dir, has_kafka_jars

_LOCAL_JARS = Path(os.environ.get("JOBPIPE_KAFKA_JARS", "/tmp/kafkalibs"))


def free_port() -> int:
    """A TCP port nothing listens on now, whose next port is free too (controller)."""
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


def _libs_dir() -> Path | None:
    return _LOCAL_JARS if has_kafka_jars(_LOCAL_JARS) else None


def stack_available() -> str | None:
    """Why a private stack cannot run here, or None when it can."""
    for tool in ("redis-server", "java"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if _libs_dir() is None and not has_kafka_jars(default_libs_dir()) and not shutil.which("mvn"):
        return "no Kafka jars and no mvn to fetch them"
    return None


class PrivateStack:
    """One redis-server and one single-node Kafka owned by a test."""

    def __init__(self, root: Path, *, appendfsync: str = "everysec",
                 maxmemory_bytes: int | None = None) -> None:
        self.root = root
        self.devstack = DevStack(root, redis_port=free_port(), kafka_port=free_port(),
                                 libs_dir=_libs_dir(), redis_appendfsync=appendfsync,
                                 redis_maxmemory_bytes=maxmemory_bytes, kafka_heap="512m")

    @property
    def redis_url(self) -> str:
        return self.devstack.redis_url

    @property
    def kafka_bootstrap(self) -> str:
        return self.devstack.kafka_bootstrap

    def up(self) -> PrivateStack:
        self.devstack.up()
        return self

    def down(self) -> None:
        self.devstack.thaw_kafka()  # a frozen broker cannot hear SIGTERM
        self.devstack.down(timeout_s=20)

    def start_redis(self) -> None:
        self.devstack.start_redis()

    def kill_redis(self) -> None:
        """kill -9: what was not yet written to the AOF is gone."""
        assert self.devstack.kill_redis(), "redis was not running"

    def start_kafka(self) -> None:
        self.devstack.start_kafka()

    def kill_kafka(self) -> None:
        """kill -9 the broker (it recovers its log on the next start)."""
        assert self.devstack.kill_kafka(), "kafka was not running"

    def freeze_kafka(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing."""
        assert self.devstack.freeze_kafka()

    def thaw_kafka(self) -> None:
        assert self.devstack.thaw_kafka()

"""A Redis and a one-node Kafka owned by one test, which it may kill, freeze and restart.

A thin adapter over :class:`jobpipe.devstack.DevStack` on free loopback ports
under the test's tmp dir; the Kafka jars come from the dev stack's shared cache
(fetched once by Maven). Every process is ended by its PID.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobpipe.devstack import DevStack
from jobpipe.devstack.ports import free_port, free_port_block
from jobpipe.errors import StackError
from tests.services import skip_unless_ci


@contextmanager
def started(stack: DevStack, what: str, *, redis_only: bool = False,
            stop_timeout_s: float = 30.0) -> Iterator[DevStack]:
    """Run ``stack`` (only its Redis with ``redis_only``) for the ``with`` block and
    stop it by PID afterwards (SIGKILL after ``stop_timeout_s``); one that cannot
    start skips locally, fails in CI."""
    try:
        if redis_only:
            stack.start_redis()
        else:
            stack.up()
    except StackError as exc:
        stack.down()
        skip_unless_ci(f"no local {what}: {exc}")
    try:
        yield stack
    finally:
        stack.down(stop_timeout_s)


class PrivateStack:
    """One redis-server and one single-node Kafka owned by a test."""

    def __init__(self, root: Path, *, appendfsync: str = "everysec",
                 maxmemory_bytes: int | None = None) -> None:
        self.root = root
        self.devstack = DevStack(root, redis_port=free_port(), kafka_port=free_port_block(2),
                                 redis_appendfsync=appendfsync,
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

    def stop_kafka(self) -> None:
        """SIGTERM: a clean broker shutdown."""
        assert self.devstack.stop_kafka(), "kafka was not running"

    def kill_kafka(self) -> None:
        """kill -9 the broker (it recovers its log on the next start)."""
        assert self.devstack.kill_kafka(), "kafka was not running"

    def freeze_kafka(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing."""
        assert self.devstack.freeze_kafka()

    def thaw_kafka(self) -> None:
        assert self.devstack.thaw_kafka()

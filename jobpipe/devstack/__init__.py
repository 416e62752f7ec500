"""A local Redis and Apache Kafka for development and tests, without Docker.

``jobpipe dev up`` runs Debian's ``redis-server`` and a KRaft Kafka assembled
from its Maven Central jars (``pom.xml`` here), each as a child process tracked
by a PID file under ``.jobpipe/``. Tests start private stacks on free ports::

    stack = DevStack(tmp_path, redis_port=free_port(), kafka_port=free_port_block(2))
    info = stack.up()
    ...
    stack.down()

``DevStack(..., redis_cluster=3)`` runs a Redis Cluster (3 primaries, 3 replicas)
instead of the single Redis; ``LocalRedisCluster`` alone runs one without Kafka.
"""

from jobpipe.devstack.certs import TlsFiles, make_test_pki
from jobpipe.devstack.kafka_broker import ExtraListener
from jobpipe.devstack.ports import free_port, free_port_block
from jobpipe.devstack.redis_cluster import LocalRedisCluster
from jobpipe.devstack.stack import (
    DEFAULT_KAFKA_PORT,
    DEFAULT_REDIS_PORT,
    DevStack,
    ProcessStatus,
    StackInfo,
)
from jobpipe.devstack.tools import find_tool, require_tools

__all__ = [
    # The stack
    "DEFAULT_KAFKA_PORT",
    "DEFAULT_REDIS_PORT",
    "DevStack",
    "ExtraListener",
    "LocalRedisCluster",
    "ProcessStatus",
    "StackInfo",
    "TlsFiles",
    # Helpers
    "find_tool",
    "free_port",
    "free_port_block",
    "make_test_pki",
    "require_tools",
]

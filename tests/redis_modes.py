"""Running one integration test on a single Redis and on a Redis Cluster.

A test (or module) marked with :data:`BOTH` runs once per mode; the fixtures
``make_settings`` and ``redis_client`` follow ``redis_mode``. Unmarked tests
stay on the single Redis, the default of jobpipe itself.

The cluster is started once per test run (:func:`started_cluster`), or named
by ``TEST_REDIS_CLUSTER_URL`` (a seed node of a running cluster;
not ``JOBPIPE_*``: jobpipe refuses variables that name no setting).
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.cluster

from jobpipe.connections import async_redis_client
from jobpipe.devstack.ports import free_port_block
from jobpipe.devstack.redis_cluster import BUS_PORT_OFFSET, LocalRedisCluster
from jobpipe.errors import StackError
from jobpipe.settings import RedisSettings, Settings
from tests.services import skip_unless_ci

SINGLE = "single"
CLUSTER = "cluster"

#: Parametrize a test over both Redis modes.
BOTH = pytest.mark.parametrize("redis_mode", [SINGLE, CLUSTER])

#: Both modes, with the cluster run left to the ``slow`` suite (heavier tests
#: whose cluster behaviour a lighter default test already shows).
BOTH_CLUSTER_SLOW = pytest.mark.parametrize(
    "redis_mode", [SINGLE, pytest.param(CLUSTER, marks=pytest.mark.slow)])


@contextmanager
def started_cluster(home: Path) -> Iterator[str]:
    """The seed URL of a Redis Cluster for this run: the one named by
    ``TEST_REDIS_CLUSTER_URL``, else a private one stopped by PID afterwards."""
    given = os.environ.get("TEST_REDIS_CLUSTER_URL")
    if given:
        yield given
        return
    cluster = LocalRedisCluster(home, free_port_block(6, shadow_offset=BUS_PORT_OFFSET))
    try:
        try:
            cluster.start("redis-server", "redis-cli")
        except StackError as exc:
            skip_unless_ci(f"no local Redis Cluster: {exc}")
        yield cluster.url
    finally:
        for node in cluster.nodes:
            node.stop()


def redis_client_for(url: str, mode: str) -> redis.Redis:
    """A test's own client of the Redis of ``mode`` (typed as ``Redis``, as the
    stages' clients are: a ``RedisCluster`` answers the same commands per key)."""
    if mode == CLUSTER:
        return typing.cast("redis.Redis", redis.cluster.RedisCluster.from_url(url))
    return redis.Redis.from_url(url)


def async_redis_client_for(url: str, mode: str) -> redis.asyncio.Redis:
    """The asyncio client a stage would get for the Redis of ``mode`` (the worker
    shares one between coroutines, so tests of its Redis users take the same)."""
    return async_redis_client(RedisSettings(url=url, cluster=mode == CLUSTER))


def redis_environ(settings: Settings) -> dict[str, str]:
    """The ``JOBPIPE_*`` variables that point a ``jobpipe`` command at the Redis of
    ``settings`` (a subprocess or CLI runner of the test)."""
    return {"JOBPIPE_REDIS_URL": settings.redis.url,
            "JOBPIPE_REDIS_CLUSTER": str(settings.redis.cluster).lower()}

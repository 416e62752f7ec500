"""Fixtures: producers on the shared Redis (per-test namespace), private Redis servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ingest import Producer
from tests.integration.ingest.redis_proc import PrivateRedis, redis_server_missing

QUEUES = {
    "default": {"shards": 4, "priorities": [3, 1]},
    "fair": {"fair": True},
    "small": {"shards": 2, "max_backlog": 5},
}


@pytest.fixture
def make_producer(make_settings, redis_client) -> Iterator[Callable[..., Producer]]:
    """Build producers on the shared Redis; closed afterwards (keys go with redis_client)."""
    made: list[Producer] = []

    def make(queues=None, **sections) -> Producer:
        producer = Producer(make_settings(queues=queues or QUEUES, **sections))
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[Callable[..., PrivateRedis]]:
    """Start private redis-servers (killed by PID afterwards)."""
    if redis_server_missing():
        pytest.skip("redis-server is not installed")
    started: list[PrivateRedis] = []

    def start(**kwargs) -> PrivateRedis:
        server = PrivateRedis(tmp_path / f"redis{len(started)}", **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()

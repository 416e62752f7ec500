"""Fixtures: producers on the shared Redis (per-test namespace), private Redis servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ingest import Producer
from jobpipe.devstack.ports import free_port
from jobpipe.devstack.redis_server import RedisConfig, RedisServer

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
def private_redis(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    """Start private redis-servers that a test may kill and restart (by PID).

    ``policy`` and ``appendonly`` override the dev stack's safe defaults, to
    test that producers refuse an unsafe Redis. ``appendfsync always``: a kill
    keeps every acknowledged write.
    """
    started: list[RedisServer] = []

    def start(policy: str = "noeviction", appendonly: str = "yes") -> RedisServer:
        config = RedisConfig(port=free_port(), appendfsync="always", extra_config=(
            f"maxmemory-policy {policy}", f"appendonly {appendonly}"))
        server = RedisServer(tmp_path / f"redis{len(started)}", config)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()

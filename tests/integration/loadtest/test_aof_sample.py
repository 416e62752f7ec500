"""Reading Redis's AOF state, on a single Redis and on a cluster's primaries."""

from __future__ import annotations

import time

import pytest
import redis

from loadtest.aof import AofSample, read_aof
from tests.redis_modes import BOTH

pytestmark = [pytest.mark.integration, BOTH]


def _primaries(client: redis.Redis | redis.RedisCluster) -> list[redis.Redis]:
    if isinstance(client, redis.RedisCluster):
        return [client.get_redis_connection(n) for n in client.get_primaries()]
    return [client]


def _settled(client: redis.Redis | redis.RedisCluster) -> AofSample:
    """A reading with no rewrite running (another test may have started one)."""
    deadline = time.monotonic() + 30
    while True:
        sample = read_aof(client)
        assert sample is not None, "the test Redis runs with appendonly yes"
        if not sample.rewriting:
            return sample
        assert time.monotonic() < deadline, "a rewrite ran for 30 s"
        time.sleep(0.1)


def test_appends_and_a_rewrite_show(redis_client, namespace: str) -> None:
    before = _settled(redis_client)
    assert bool(before.nodes) == isinstance(redis_client, redis.RedisCluster)
    for _ in range(3):  # a rewrite started by another test in between shrinks the file
        redis_client.set(f"{namespace}:{{aof}}:payload", b"x" * 100_000)
        grown = read_aof(redis_client)
        assert grown is not None
        if grown.rewrites == before.rewrites:
            break
        before = _settled(redis_client)
    assert grown.size >= before.size + 100_000
    for node in _primaries(redis_client):
        try:
            node.bgrewriteaof()
        except redis.ResponseError as exc:
            if "already" not in str(exc):  # another test's rewrite runs: it counts as well
                raise
    deadline = time.monotonic() + 30
    after = read_aof(redis_client)
    while after is not None and (after.rewriting or after.rewrites == before.rewrites):
        assert time.monotonic() < deadline, "no rewrite finished within 30 s"
        time.sleep(0.1)
        after = read_aof(redis_client)
    assert after is not None
    assert after.rewrites > before.rewrites

"""Rate limits against real Redis: shared by two workers, independent per tenant."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio

from consumers.ratelimit import RateLimiter
from jobpipe.topology import QueueSpec
from tests.redis_modes import BOTH_CLUSTER_SLOW, async_redis_client_for

pytestmark = pytest.mark.integration


async def _count_for(limiter: RateLimiter, spec: QueueSpec, tenant: str | None,
                     until: float, tasks: int = 8) -> int:
    """Acquire as fast as ``tasks`` concurrent jobs can until ``until``."""
    count = 0

    async def one() -> None:
        nonlocal count
        while True:
            await limiter.acquire(spec, tenant)
            if time.monotonic() >= until:
                return
            count += 1

    await asyncio.gather(*(one() for _ in range(tasks)))
    return count


@BOTH_CLUSTER_SLOW
async def test_queue_rate_limit_holds_across_two_workers(redis_url, redis_mode, namespace,
                                                         redis_client):
    spec = QueueSpec("default", rate_limit_per_s=50.0)
    clients = [async_redis_client_for(redis_url, redis_mode) for _ in range(2)]
    try:
        limiters = [RateLimiter(c, namespace) for c in clients]
        started = time.monotonic()
        until = started + 2.0
        counts = await asyncio.gather(*(_count_for(lim, spec, None, until) for lim in limiters))
        elapsed_s = time.monotonic() - started
    finally:
        for c in clients:
            await c.aclose()
    total = sum(counts)
    assert total <= 50 * elapsed_s + 50 + 1  # rate * time + burst
    assert total >= 50 * 2.0 * 0.6
    assert min(counts) > 0  # both workers were served


@BOTH_CLUSTER_SLOW
async def test_tenant_rate_limits_are_independent(redis_url, redis_mode, namespace, redis_client):
    spec = QueueSpec("default", tenant_rate_limit_per_s=20.0)
    client = async_redis_client_for(redis_url, redis_mode)
    try:
        limiter = RateLimiter(client, namespace)
        started = time.monotonic()
        until = started + 1.5
        a, b = await asyncio.gather(_count_for(limiter, spec, "a", until),
                                    _count_for(limiter, spec, "b", until))
        elapsed_s = time.monotonic() - started
    finally:
        await client.aclose()
    for count in (a, b):
        assert count <= 20 * elapsed_s + 20 + 1
        assert count >= 20 * 1.5 * 0.6  # one tenant's use never starves the other


async def test_queue_without_limits_never_calls_redis():
    # Nothing listens on port 1: any Redis call would fail.
    client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0")
    try:
        await RateLimiter(client, "ns").acquire(QueueSpec("default"), "a")
    finally:
        await client.aclose()

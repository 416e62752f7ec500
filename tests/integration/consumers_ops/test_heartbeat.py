"""The worker heartbeat's Redis trouble on a real Redis: a refusal (an ACL user
without ZADD) stops the worker; a Redis that is down is logged and beaten again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import redis.asyncio

from consumers.heartbeat import heartbeat_loop
from consumers.redis_trouble import RedisTrouble
from jobpipe import names

pytestmark = pytest.mark.integration
WAIT_S = 30.0  # generous: the loop ends within one INTERVAL_S of the refusal
PASSWORD = "beat-Pa55"


@pytest.fixture
def no_zadd_url(redis_url: str, redis_client: redis.Redis, namespace: str) -> Iterator[str]:
    """The URL of a Redis user who may do anything but ``ZADD``."""
    user = f"{namespace}-nozadd"
    redis_client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{PASSWORD}",
                                 "~*", "+@all", "-zadd")
    parts = urlsplit(redis_url)
    yield urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{parts.hostname}:{parts.port}"))
    redis_client.execute_command("ACL", "DELUSER", user)


async def test_a_refused_heartbeat_stops_the_worker_and_removes_its_entry(
        no_zadd_url, redis_client, namespace):
    key = names.workers_key(namespace)
    redis_client.zadd(key, {"w1": 1})  # an earlier beat, from before the ACL changed
    stopped = asyncio.Event()
    trouble = RedisTrouble(stop=stopped.set)
    client = redis.asyncio.Redis.from_url(no_zadd_url)
    try:
        # No cancel: the loop ends by itself once the refusal is noted.
        await asyncio.wait_for(heartbeat_loop(client, namespace, "w1", trouble), WAIT_S)
    finally:
        await client.aclose()
    assert stopped.is_set()
    assert isinstance(trouble.refusal, redis.exceptions.NoPermissionError)
    assert "'zadd'" in str(trouble.refusal)
    assert redis_client.zscore(key, "w1") is None


async def test_a_heartbeat_on_a_redis_that_is_down_is_logged_and_goes_on(caplog):
    stopped = asyncio.Event()
    trouble = RedisTrouble(stop=stopped.set)
    # Nothing listens on port 1: every beat fails as Redis down does.
    client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0")
    caplog.set_level(logging.WARNING, logger="consumers.redis_trouble")
    task = asyncio.create_task(heartbeat_loop(client, "ns", "w1", trouble))

    def logged(what: str) -> bool:
        return any(r.getMessage().startswith(f"{what} failed") for r in caplog.records)

    try:
        async with asyncio.timeout(WAIT_S):
            while not logged("writing the worker heartbeat"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert not task.done()  # still beating: the next beat may find Redis back
        assert not stopped.is_set()
        assert trouble.refusal is None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
    assert logged("removing the worker heartbeat")
    assert not stopped.is_set()

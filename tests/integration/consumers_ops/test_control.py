"""Pause and resume against real Redis: flags, announcements, parking, re-injection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio

from consumers.control import (
    Controls,
    pause_queue,
    pause_tenant,
    resume_queue,
    resume_tenant,
)
from jobpipe import names
from jobpipe.envelope import encode, peek_key
from jobpipe.topology import QueueSpec, shard_for
from tests.integration.consumers_ops.conftest import make_job
from tests.redis_modes import BOTH_CLUSTER_SLOW, async_redis_client_for, redis_environ

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]


@contextlib.asynccontextmanager
async def _aclient(redis_url: str, redis_mode: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client on the test's own loop, closed with it."""
    client = async_redis_client_for(redis_url, redis_mode)
    try:
        yield client
    finally:
        await client.aclose()


def _announcements(pubsub, count: int, timeout_s: float = 5.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if msg is not None:
            got.append(orjson.loads(msg["data"]))
    return got


@pytest.mark.parametrize("shard_slots", [False, True])
def test_resume_raises_the_wake_up_of_every_shard(namespace, redis_client, shard_slots):
    """A resumed queue's idle bridges wake at once: with ``shard_slots`` each
    shard has its own wake-up, and each must be raised, not only ``{q}``'s."""
    spec = QueueSpec("email", shards=4, shard_slots=shard_slots)
    pause_queue(redis_client, namespace, "email")
    resume_queue(redis_client, namespace, spec)
    raised = [redis_client.zscore(names.wake_key(namespace, "email", slot), names.WAKE_MEMBER)
              for slot in spec.slots]
    assert raised == [0.0] * (4 if shard_slots else 1)


async def test_queue_pause_and_resume_set_flags_and_announce(namespace, redis_client,
                                                             redis_url, redis_mode):
    async with _aclient(redis_url, redis_mode) as aclient:
        pubsub = redis_client.pubsub()
        pubsub.subscribe(names.control_channel(namespace))
        controls = Controls(aclient, namespace, [QueueSpec("email")])
        pause_queue(redis_client, namespace, "email")
        await controls.refresh()
        assert controls.is_queue_paused("email")
        assert not controls.is_queue_paused("other")
        resume_queue(redis_client, namespace, QueueSpec("email"))
        await controls.refresh()
        assert not controls.is_queue_paused("email")
        assert _announcements(pubsub, 2) == [
            {"op": "pause", "queue": "email", "tenant": None},
            {"op": "resume", "queue": "email", "tenant": None}]
        pubsub.close()


async def test_controls_without_queues_find_paused_tenants(namespace, redis_client,
                                                           redis_url, redis_mode):
    async with _aclient(redis_url, redis_mode) as aclient:
        controls = Controls(aclient, namespace)
        await controls.refresh()
        pause_tenant(redis_client, namespace, "email", "acme")
        await controls.refresh()
        assert controls.is_tenant_paused("email", "acme")
        assert not controls.is_tenant_paused("email", "other")
        resume_tenant(redis_client, namespace, QueueSpec("email"), "acme")
        await controls.refresh()
        assert not controls.is_tenant_paused("email", "acme")


async def test_follow_sees_a_pause_at_once(namespace, redis_client, redis_url, redis_mode):
    async with _aclient(redis_url, redis_mode) as aclient:
        controls = Controls(aclient, namespace, [QueueSpec("email")])
        stop = asyncio.Event()
        # A long interval: only the announcement can make the change visible in time.
        follower = asyncio.create_task(controls.follow(stop, interval_s=30.0))
        await asyncio.sleep(0.3)  # let it subscribe
        version = controls.version
        await asyncio.to_thread(pause_tenant, redis_client, namespace, "email", "acme")
        deadline = time.monotonic() + 2.0
        while controls.version == version and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert controls.is_tenant_paused("email", "acme")
        stop.set()
        await asyncio.wait_for(follower, 35)


async def test_tenant_pause_parks_and_resume_reinjects_in_order(namespace, redis_client,
                                                                redis_url, redis_mode):
    async with _aclient(redis_url, redis_mode) as aclient:
        spec = QueueSpec("email", shards=2, priorities=(1, 1))
        controls = Controls(aclient, namespace, [spec])
        pause_tenant(redis_client, namespace, "email", "acme")
        await controls.refresh()
        assert controls.is_tenant_paused("email", "acme")
        assert not controls.is_tenant_paused("email", "other")
        assert not controls.is_tenant_paused("email", None)
        jobs = [make_job("email", key="k", tenant="acme", args={"i": i}) for i in range(5)]
        jobs.append(make_job("email", key="k", tenant="acme", priority=1))
        for job in jobs:
            assert await controls.park(encode(job), "email", "acme")
        parked = names.parked_key(namespace, "email", "acme")
        assert redis_client.llen(parked) == 6

        ready = names.ready_key(namespace, "email", shard_for(b"k", 2, 0), 0)
        redis_client.lpush(ready, b"newer")  # waiting work of another tenant
        assert resume_tenant(redis_client, namespace, spec, "acme") == 5 + 1
        assert redis_client.llen(parked) == 0
        assert not redis_client.sismember(names.paused_tenants_key(namespace, "email"), "acme")
        # The bridge takes from the right: the parked jobs come first, oldest first.
        taken = [redis_client.rpop(ready) for _ in range(6)]
        assert taken == [encode(j) for j in jobs[:5]] + [b"newer"]
        level1 = names.ready_key(namespace, "email", shard_for(peek_key(encode(jobs[5])), 2, 0), 1)
        assert redis_client.rpop(level1) == encode(jobs[5])


async def test_fair_tenant_resume_goes_to_the_tenant_list(namespace, redis_client,
                                                          redis_url, redis_mode):
    async with _aclient(redis_url, redis_mode) as aclient:
        spec = QueueSpec("email", fair=True)
        controls = Controls(aclient, namespace, [spec])
        pause_tenant(redis_client, namespace, "email", "acme")
        await controls.refresh()
        jobs = [make_job("email", tenant="acme", args={"i": i}) for i in range(3)]
        for job in jobs:
            await controls.park(encode(job), "email", "acme")
        tenant_list = names.tenant_ready_key(namespace, "email", "acme")
        redis_client.lpush(tenant_list, b"enqueued-while-paused")
        other = names.tenant_ready_key(namespace, "email", "other")
        redis_client.lpush(other, b"other-job")
        assert resume_tenant(redis_client, namespace, spec, "acme") == 3
        assert redis_client.sismember(names.tenants_key(namespace, "email"), "acme")
        taken = [redis_client.rpop(tenant_list) for _ in range(4)]
        assert taken == [encode(j) for j in jobs] + [b"enqueued-while-paused"]
        assert redis_client.lrange(other, 0, -1) == [b"other-job"]


async def test_a_job_parked_after_resume_goes_back_to_ready(namespace, redis_client,
                                                           redis_url, redis_mode):
    async with _aclient(redis_url, redis_mode) as aclient:
        spec = QueueSpec("email", shards=1)
        controls = Controls(aclient, namespace, [spec])
        pause_tenant(redis_client, namespace, "email", "acme")
        await controls.refresh()
        resume_tenant(redis_client, namespace, spec, "acme")  # the worker has not refreshed yet
        job = encode(make_job("email", tenant="acme"))
        assert not await controls.park(job, "email", "acme")
        assert redis_client.llen(names.parked_key(namespace, "email", "acme")) == 0
        assert redis_client.rpop(names.ready_key(namespace, "email", 0, 0)) == job


def test_a_bad_tenant_name_is_refused(namespace, redis_client):
    from jobpipe.errors import ConfigError

    with pytest.raises(ConfigError, match="tenant"):
        pause_tenant(redis_client, namespace, "email", "bad tenant")


def test_cli_pauses_and_resumes_a_queue_and_a_tenant(namespace, services, redis_client,
                                                     monkeypatch, capsys, make_settings):
    from jobpipe.cli import main

    monkeypatch.setenv("JOBPIPE_NAMESPACE", namespace)
    for variable, value in redis_environ(make_settings()).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("JOBPIPE_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    monkeypatch.delenv("JOBPIPE_CONFIG", raising=False)
    monkeypatch.chdir("/")
    main(["pause", "default"])
    assert redis_client.sismember(names.paused_queues_key(namespace), "default")
    main(["pause", "default", "--tenant", "acme"])
    assert redis_client.sismember(names.paused_tenants_key(namespace, "default"), "acme")
    main(["resume", "default", "--tenant", "acme"])
    main(["resume", "default"])
    assert not redis_client.sismember(names.paused_queues_key(namespace), "default")
    assert not redis_client.sismember(names.paused_tenants_key(namespace, "default"), "acme")
    out = capsys.readouterr().out
    assert "resumed tenant acme of queue default; 0 parked job(s) re-injected" in out
    with pytest.raises(SystemExit):
        main(["pause", "nope"])
    assert capsys.readouterr().err.startswith("jobpipe: error: unknown queue 'nope'")

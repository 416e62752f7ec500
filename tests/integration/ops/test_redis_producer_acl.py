"""A least-privilege producer user (rules from ``ingest.acl``) on a real Redis:
its jobs flow to a worker, while ``FLUSHALL``, reads and other queues are refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from bridge import Bridge
from consumers import App, JobContext, Worker
from ingest import AsyncProducer, Producer
from ingest.acl import producer_acl_rules, scheduler_acl_rules
from ingest.intake import MULTI_MIN_JOBS
from ingest.scheduler import Scheduler
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.errors import ConfigError
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.integration

PRODUCER_PASSWORD = "producer-Pa55"
PRODUCER = "jp-producer"
QUEUES = {"default": {"partitions": 2, "shards": 2, "priorities": [2, 1]},
          "fair": {"partitions": 2, "shards": 1, "fair": True},
          "other": {"partitions": 1, "shards": 1}}


def _settings(services, namespace: str, url: str, require_safe: bool = True) -> Settings:
    return load_settings(None, environ={}, overrides={
        "namespace": namespace,
        "redis": {"url": url, "require_safe": require_safe},
        "kafka": {"bootstrap": services.kafka_bootstrap},
        "queues": QUEUES,
    })


@pytest.fixture
def acl_settings(acl_redis_port, services, namespace) -> Iterator[tuple[Settings, Settings]]:
    """(admin settings, producer settings): the producer user may push to
    ``default`` and ``fair`` only."""
    admin = _settings(services, namespace,
                      f"redis://admin:{ADMIN_PASSWORD}@127.0.0.1:{acl_redis_port}/0")
    producer = _settings(services, namespace,
                         f"redis://{PRODUCER}:{PRODUCER_PASSWORD}@127.0.0.1:{acl_redis_port}/0",
                         require_safe=False)
    rules = producer_acl_rules(namespace, admin.topology.select(["default", "fair"]))
    client = redis.Redis.from_url(admin.redis.url)
    client.execute_command("ACL", "SETUSER", PRODUCER, "reset", *rules, "on",
                           f">{PRODUCER_PASSWORD}")
    yield admin, producer
    client.execute_command("ACL", "DELUSER", PRODUCER)
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        client.delete(key)
    client.close()


async def _enqueue_async(settings: Settings) -> list[str]:
    async with AsyncProducer(settings) as producer:
        return [*await producer.enqueue_many("default", "work", [{"via": "aio"}] * 3),
                await producer.enqueue("fair", "work", {}, tenant="acme")]


def test_the_producer_user_enqueues_every_kind_of_job_and_they_reach_a_worker(
        acl_settings, kafka_cleanup):
    admin, producer_settings = acl_settings
    apply_topics(admin)
    with Producer(producer_settings) as producer:
        # a batch this big goes as MULTI/LPUSH/EXEC, a smaller one through the script
        ids = producer.enqueue_many("default", "work", [{"i": i} for i in range(MULTI_MIN_JOBS)])
        ids.append(producer.enqueue("default", "work", {}, priority=1))
        ids.append(producer.enqueue("default", "work", {}, idempotency_key="k1",
                                    unique_for_s=60))
        ids.append(producer.enqueue("default", "work", {}, delay_s=0.2))
        due_at = time.monotonic() + 0.2
        ids += producer.enqueue_many("fair", "work", [{}] * 5, tenant="acme")
    ids += asyncio.run(_enqueue_async(producer_settings))

    done: set[str] = set()
    app = App("acl")

    @app.task
    async def work(ctx: JobContext, args: dict) -> None:
        done.add(ctx.job_id)

    # run_until_idle leaves delayed jobs that are not yet due: let this one come due.
    time.sleep(max(0.0, due_at - time.monotonic()))
    assert Bridge(admin).run_until_idle(60)  # the bridge runs with the broader user
    assert Worker(admin, app).run_until_idle(60)
    assert done == set(ids)


def test_the_producer_user_is_refused_everything_else(acl_settings):
    admin, producer_settings = acl_settings
    ns = admin.namespace
    other = names.ready_key(ns, "other", 0)
    redis.Redis.from_url(admin.redis.url).lpush(other, b"someone else's job")
    client = redis.Redis.from_url(producer_settings.redis.url)
    refused = [lambda: client.flushall(), lambda: client.lrange(other, 0, -1),
               lambda: client.lpush(other, b"x"),
               lambda: client.lrange(names.ready_key(ns, "default", 0), 0, -1),
               lambda: client.keys("*"), lambda: client.config_get("requirepass")]
    for command in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()
    client.close()
    assert redis.Redis.from_url(admin.redis.url).llen(other) == 1

    with Producer(producer_settings) as producer, pytest.raises(
            redis.exceptions.NoPermissionError):
        producer.enqueue("other", "work", {})


def test_with_require_safe_the_producer_user_says_what_to_change_in_one_line(acl_settings):
    _, producer_settings = acl_settings
    strict = replace(producer_settings,
                     redis=replace(producer_settings.redis, require_safe=True))
    with pytest.raises(ConfigError, match="may not run CONFIG GET") as caught:
        Producer(strict)
    assert "\n" not in str(caught.value)
    assert PRODUCER_PASSWORD not in str(caught.value)


def test_the_scheduler_user_fires_its_schedules_and_nothing_else(acl_redis_port, services,
                                                                 namespace):
    url = f"redis://admin:{ADMIN_PASSWORD}@127.0.0.1:{acl_redis_port}/0"
    tick = {"queue": "default", "task": "work", "interval_s": 60, "misfire": "run_once"}
    admin = load_settings(None, environ={}, overrides={
        "namespace": namespace, "redis": {"url": url},
        "kafka": {"bootstrap": services.kafka_bootstrap}, "queues": QUEUES,
        "schedules": {"tick": tick}})
    rules = scheduler_acl_rules(namespace, admin.topology, admin.schedules.values())
    client = redis.Redis.from_url(url)
    client.execute_command("ACL", "SETUSER", "jp-scheduler", "reset", *rules, "on",
                           f">{PRODUCER_PASSWORD}")
    own = replace(admin, redis=replace(admin.redis, require_safe=False, url=(
        f"redis://jp-scheduler:{PRODUCER_PASSWORD}@127.0.0.1:{acl_redis_port}/0")))
    last_key = names.schedules_last_key(namespace)
    seconds, _ = client.time()
    client.zadd(last_key, {"tick": (seconds - 90) * 1000})  # one or two fire times are due
    scheduler = Scheduler(own)
    try:
        scheduler.run_pass()
        spec = admin.topology.get("default")
        queued = sum(client.llen(names.ready_key(namespace, "default", shard, level))
                     for level in spec.levels for shard in range(spec.shards))
        assert queued >= 1  # 90 s of a 60 s interval hold one or two fire times
        assert int(client.zscore(last_key, "tick")) >= seconds * 1000
        mine = redis.Redis.from_url(own.redis.url)
        other = names.ready_key(namespace, "other", 0)
        for command in (mine.flushall, lambda: mine.lpush(other, b"x"),
                        lambda: mine.zadd(names.delayed_key(namespace, "other"), {"x": 1})):
            with pytest.raises(redis.exceptions.NoPermissionError):
                command()
        mine.close()
    finally:
        scheduler.close()
        client.execute_command("ACL", "DELUSER", "jp-scheduler")
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.delete(key)
        client.close()

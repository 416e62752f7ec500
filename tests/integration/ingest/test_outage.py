"""Redis down, then up; and a Redis that would drop jobs. Private redis-servers only."""

from __future__ import annotations

import logging

import pytest
import redis

from ingest import AsyncProducer, Producer
from jobpipe import names
from jobpipe.envelope import decode
from jobpipe.errors import IntakeUnavailable, UnsafeRedis
from jobpipe.topology import shard_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _settings(make_settings, url, **ingest):
    settings = make_settings(queues={"default": {"shards": 2}}, ingest=ingest)
    from dataclasses import replace

    return replace(settings, redis=replace(settings.redis, url=url, socket_timeout_s=1.0))


def test_unavailable_redis_raises_naming_the_address_after_the_deadline(private_redis,
                                                                         make_settings):
    server = private_redis()
    producer = Producer(_settings(make_settings, server.url, deadline_s=0.3))
    server.kill()
    with pytest.raises(IntakeUnavailable, match=f"127.0.0.1:{server.config.port}"):
        producer.enqueue_many("default", "t", [1, 2, 3])
    producer.close()


def test_spooled_jobs_arrive_in_order_when_redis_is_back(private_redis, make_settings,
                                                         tmp_path, namespace, caplog):
    server = private_redis()
    spool = tmp_path / "spool" / "jobs.jsonl"
    producer = Producer(_settings(make_settings, server.url, deadline_s=0.2,
                                  spool_path=str(spool)))
    before = producer.enqueue("default", "t", 0, key="k")
    server.kill()
    with caplog.at_level(logging.WARNING, logger="ingest"):
        during = [producer.enqueue("default", "t", n, key="k") for n in range(1, 4)]
        during += producer.enqueue_many("default", "t", [4, 5, 6], key="k")
        during.append(producer.enqueue("default", "t", 7, delay_s=60))
    assert "unavailable; spooled 1 jobs" in caplog.text  # the rest queue behind it
    assert spool.exists()
    server.start()  # same port and dir: the AOF brings back what was acked
    after = producer.enqueue("default", "t", 8, key="k")  # replays the spool first
    assert not spool.exists()
    client = redis.Redis.from_url(server.url)
    key = names.ready_key(namespace, "default", shard_for(b"k", 2, 0))
    ready = [decode(raw) for raw in reversed(client.lrange(key, 0, -1))]
    assert [j.id for j in ready] == [before, *during[:6], after]
    assert [j.args for j in ready] == [*list(range(7)), 8]
    [delayed] = client.zrange(names.delayed_key(namespace, "default"), 0, -1)
    assert decode(delayed).id == during[6]
    client.close()
    producer.close()


async def test_async_producer_spools_and_replays(private_redis, make_settings, tmp_path,
                                                 namespace):
    server = private_redis()
    spool = tmp_path / "aspool.jsonl"
    async with AsyncProducer(_settings(make_settings, server.url, deadline_s=0.2,
                                       spool_path=str(spool))) as producer:
        server.kill()
        ids = await producer.enqueue_many("default", "t", [1, 2], key="k")
        assert spool.exists()
        server.start()
        assert await producer.flush_spool() == 2
    client = redis.Redis.from_url(server.url)
    key = names.ready_key(namespace, "default", shard_for(b"k", 2, 0))
    assert [decode(raw).id for raw in reversed(client.lrange(key, 0, -1))] == ids
    client.close()


@pytest.mark.parametrize(("options", "problem"), [
    ({"policy": "allkeys-lru"}, "maxmemory-policy is 'allkeys-lru'"),
    ({"appendonly": "no"}, "appendonly is 'no'"),
])
def test_producer_refuses_a_redis_that_may_drop_jobs(private_redis, make_settings, options,
                                                     problem):
    server = private_redis(**options)
    with pytest.raises(UnsafeRedis, match=problem):
        Producer(_settings(make_settings, server.url))


def test_require_safe_off_only_warns(private_redis, make_settings, caplog):
    from dataclasses import replace

    server = private_redis(policy="allkeys-lru")
    settings = _settings(make_settings, server.url)
    settings = replace(settings, redis=replace(settings.redis, require_safe=False))
    with caplog.at_level(logging.WARNING), Producer(settings) as producer:
        producer.enqueue("default", "t", 1)
    assert "allkeys-lru" in caplog.text


def test_a_big_batch_refused_by_a_full_redis_writes_nothing_and_the_link_stays_usable(
        private_redis, make_settings, namespace):
    from jobpipe.errors import QueueFull

    server = private_redis()
    client = redis.Redis.from_url(server.url)
    producer = Producer(_settings(make_settings, server.url, deadline_s=0.2))
    client.config_set("maxmemory", 1)  # over maxmemory: every LPUSH is refused (OOM)
    with pytest.raises(QueueFull):
        producer.enqueue_many("default", "t", list(range(1000)))  # MULTI path
    assert client.keys(f"{namespace}:*") == []
    client.config_set("maxmemory", 0)
    ids = producer.enqueue_many("default", "t", list(range(1000)))  # same pooled connection
    lists = [names.ready_key(namespace, "default", shard) for shard in range(2)]
    assert sum(client.llen(key) for key in lists) == len(ids) == 1000
    producer.close()
    client.close()


async def test_async_big_batch_refused_by_a_full_redis_writes_nothing(private_redis,
                                                                       make_settings,
                                                                       namespace):
    from jobpipe.errors import QueueFull

    server = private_redis()
    client = redis.Redis.from_url(server.url)
    async with AsyncProducer(_settings(make_settings, server.url, deadline_s=0.2)) as producer:
        client.config_set("maxmemory", 1)
        with pytest.raises(QueueFull):
            await producer.enqueue_many("default", "t", list(range(1000)))
        assert client.keys(f"{namespace}:*") == []
        client.config_set("maxmemory", 0)
        ids = await producer.enqueue_many("default", "t", list(range(1000)))
    lists = [names.ready_key(namespace, "default", shard) for shard in range(2)]
    assert sum(client.llen(key) for key in lists) == len(ids) == 1000
    client.close()

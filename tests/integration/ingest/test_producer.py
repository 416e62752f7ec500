"""Producer behaviour against the real Redis."""

from __future__ import annotations

import threading

import orjson
import pytest

from ingest import AsyncProducer, JobOptions, JobRequest
from jobpipe import names
from jobpipe.envelope import decode, peek_key
from jobpipe.errors import JobRejected, JobTooLarge, NotSerializable, QueueFull, UnknownQueue
from jobpipe.topology import shard_for
from tests.redis_modes import BOTH, SINGLE

pytestmark = [pytest.mark.integration, BOTH]


def _drain(redis_client, key):
    """Jobs of a ready list in the order the bridge takes them (RPOP side first)."""
    return [decode(raw) for raw in reversed(redis_client.lrange(key, 0, -1))]


def _all_ready(redis_client, ns, queue="default", level=0, shards=4):
    return [job for s in range(shards)
            for job in _drain(redis_client, names.ready_key(ns, queue, s, level))]


def test_jobs_with_one_key_keep_their_order_on_one_shard(make_producer, redis_client, namespace):
    producer = make_producer()
    first = [producer.enqueue("default", "t", n, key="user-1") for n in range(5)]
    rest = producer.enqueue_many("default", "t", list(range(5, 10)), key="user-1")
    shard = shard_for(b"user-1", 4, 0)
    jobs = _drain(redis_client, names.ready_key(namespace, "default", shard))
    assert [j.id for j in jobs] == first + rest
    assert [j.args for j in jobs] == list(range(10))
    assert peek_key(redis_client.lindex(names.ready_key(namespace, "default", shard), 0)) \
        == b"user-1"


def test_unkeyed_jobs_spread_and_priority_picks_the_level(make_producer, redis_client,
                                                          namespace):
    producer = make_producer()
    ids = producer.enqueue_many("default", "t", list(range(40)), priority=1, max_attempts=3)
    jobs = _all_ready(redis_client, namespace, level=1)
    assert sorted(j.id for j in jobs) == sorted(ids)
    assert all(redis_client.llen(names.ready_key(namespace, "default", s, 1)) == 10
               for s in range(4))
    assert {(j.priority, j.max_attempts) for j in jobs} == {(1, 3)}


def test_unique_window_returns_the_first_id_and_writes_once(make_producer, redis_client,
                                                            namespace):
    producer = make_producer()
    first = producer.enqueue("default", "t", 1, idempotency_key="order-9", unique_for_s=60)
    again = producer.enqueue("default", "t", 2, idempotency_key="order-9", unique_for_s=60)
    assert again == first
    assert [j.id for j in _all_ready(redis_client, namespace)] == [first]
    key = names.unique_key(namespace, "default", "order-9")
    assert redis_client.get(key) == first.encode()
    assert 0 < redis_client.ttl(key) <= 60
    redis_client.delete(key)  # the window ended
    third = producer.enqueue("default", "t", 3, idempotency_key="order-9", unique_for_s=60)
    assert third != first


def test_delayed_jobs_go_to_the_zset_scored_by_run_at_ms(make_producer, redis_client,
                                                         namespace):
    producer = make_producer()
    job_id = producer.enqueue("default", "t", {"x": 1}, delay_s=30, key="k")
    [(raw, score)] = redis_client.zrange(names.delayed_key(namespace, "default"), 0, -1,
                                         withscores=True)
    job = decode(raw)
    assert job.id == job_id
    assert job.key == "k"
    assert job.run_at is not None
    assert score == job.run_at // 1_000_000
    assert job.run_at - job.enqueued_at == pytest.approx(30e9, abs=1e6)
    assert _all_ready(redis_client, namespace) == []


def test_fair_jobs_go_to_the_tenant_list_and_registry(make_producer, redis_client, namespace):
    producer = make_producer()
    producer.enqueue_many("fair", "t", [1, 2], tenant="acme")
    producer.enqueue("fair", "t", 3)
    assert redis_client.smembers(names.tenants_key(namespace, "fair")) == {b"acme", b"default"}
    acme = _drain(redis_client, names.tenant_ready_key(namespace, "fair", "acme"))
    assert [(j.args, j.tenant) for j in acme] == [(1, "acme"), (2, "acme")]
    assert redis_client.llen(names.tenant_ready_key(namespace, "fair", "default")) == 1


@pytest.mark.parametrize("kind", ["plain", "script"])
def test_full_queue_raises_without_writing(make_producer, redis_client, namespace, kind):
    producer = make_producer()
    producer.enqueue_many("small", "t", [1, 2, 3, 4, 5])
    options = {} if kind == "plain" else {"idempotency_key": "u", "unique_for_s": 5}
    with pytest.raises(QueueFull, match="5 jobs waiting"):
        producer.enqueue("small", "t", 6, **options)
    total = sum(redis_client.llen(names.ready_key(namespace, "small", s)) for s in range(2))
    assert total == 5
    assert redis_client.exists(names.unique_key(namespace, "small", "u")) == 0


def test_full_queue_blocks_until_the_bridge_makes_room(make_producer, redis_client, namespace):
    producer = make_producer(ingest={"on_full": "block", "block_timeout_s": 30})
    producer.enqueue_many("small", "t", [1, 2, 3, 4, 5], key="k")
    key = names.ready_key(namespace, "small", shard_for(b"k", 2, 0))
    done = threading.Event()
    result: list[str] = []

    def blocked() -> None:
        result.append(producer.enqueue("small", "t", 6, key="k"))
        done.set()

    thread = threading.Thread(target=blocked)
    thread.start()
    assert not done.wait(0.3)  # still waiting for room
    redis_client.rpop(key)  # the bridge takes one job
    assert done.wait(10)
    thread.join()
    assert [j.args for j in _drain(redis_client, key)] == [2, 3, 4, 5, 6]


def test_blocking_gives_up_after_block_timeout(make_producer):
    producer = make_producer(ingest={"on_full": "block", "block_timeout_s": 0.2})
    producer.enqueue_many("small", "t", [1, 2, 3, 4, 5])
    with pytest.raises(QueueFull):
        producer.enqueue("small", "t", 6)


def test_a_batch_with_one_bad_job_writes_nothing(make_producer, redis_client, namespace):
    producer = make_producer()
    with pytest.raises(NotSerializable, match=r"args\[2\]"):
        producer.enqueue_many("default", "t", [1, 2, {3}, 4])
    with pytest.raises(JobRejected):
        producer.enqueue_jobs("default", [JobRequest("t", 1), JobRequest("t", 2, JobOptions(
            priority=5))])
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"queue": "nope"}, UnknownQueue),
    ({"args": {"when": object()}}, NotSerializable),
    ({"args": "x" * 300_000}, JobTooLarge),
    ({"delay_s": -1}, JobRejected),
    ({"tenant": "no spaces"}, JobRejected),
    ({"priority": 7}, JobRejected),
])
def test_bad_input_is_refused_before_anything_is_written(make_producer, redis_client,
                                                         namespace, kwargs, error):
    producer = make_producer()
    call = {"queue": "default", "task": "t", "args": 1, **kwargs}
    with pytest.raises(error):
        producer.enqueue(call.pop("queue"), call.pop("task"), call.pop("args"), **call)
    assert list(redis_client.scan_iter(match=f"{namespace}:*")) == []


async def test_async_producer_places_jobs_like_the_sync_one(make_settings, redis_client,
                                                            namespace):
    from tests.integration.ingest.conftest import QUEUES

    async with AsyncProducer(make_settings(queues=QUEUES)) as producer:
        ids = await producer.enqueue_many("default", "t", [1, 2, 3], key="a")
        dup = await producer.enqueue("default", "t", 0, idempotency_key="i", unique_for_s=9)
        assert await producer.enqueue("default", "t", 0, idempotency_key="i",
                                      unique_for_s=9) == dup
        await producer.enqueue("fair", "t", 1, tenant="z", delay_s=5)
    key = names.ready_key(namespace, "default", shard_for(b"a", 4, 0))
    assert [j.id for j in _drain(redis_client, key)][:3] == ids
    assert redis_client.zcard(names.delayed_key(namespace, "fair")) == 1
    assert orjson.loads(redis_client.zrange(names.delayed_key(namespace, "fair"), 0, 0)[0])[
        "tenant"] == "z"


def test_big_plain_batches_go_as_multi_and_still_respect_the_mark(make_producer, redis_client,
                                                                  namespace, redis_mode):
    producer = make_producer(queues={"big": {"shards": 2, "max_backlog": 300}})
    ids = producer.enqueue_many("big", "t", list(range(300)))
    # A cluster takes the script instead: it is routed by its keys, a raw MULTI is not.
    multi = producer._core.use_multi(producer._core.plan_many("big", "t", ids, JobOptions()))
    assert multi == (redis_mode == SINGLE)
    with pytest.raises(QueueFull, match="300 jobs waiting"):
        producer.enqueue_many("big", "t", list(range(300)))
    keys = [names.ready_key(namespace, "big", s) for s in range(2)]
    assert sum(redis_client.llen(k) for k in keys) == 300
    redis_client.delete(*keys)  # the bridge drained it: room again
    assert len(producer.enqueue_many("big", "t", list(range(300)))) == 300


@pytest.mark.parametrize("push", [
    pytest.param(lambda p: p.enqueue("default", "t", 1), id="script"),
    pytest.param(lambda p: p.enqueue_many("default", "t", list(range(300))), id="multi"),
    pytest.param(lambda p: p.enqueue("default", "t", 1, delay_s=60), id="delayed"),
])
def test_every_push_raises_the_queues_wake_up_once(make_producer, redis_client, namespace,
                                                   push):
    wake = names.wake_key(namespace, "default")
    producer = make_producer()
    push(producer)
    push(producer)
    assert redis_client.zrange(wake, 0, -1, withscores=True) == [(b"w", 0.0)]
    assert redis_client.bzpopmin([wake], 1) == (wake.encode(), b"w", 0.0)


def test_a_task_ref_enqueues_through_either_producer(make_producer, make_settings,
                                                     redis_client, namespace):
    """``ref.using(producer)``: the job carries the ref's queue and task, the args and
    the options, whichever producer sent it."""
    import asyncio

    from jobpipe.tasks import TaskRef
    from tests.integration.ingest.conftest import QUEUES

    ref: TaskRef[dict[str, int]] = TaskRef("default", "send")
    sync_id = ref.using(make_producer()).enqueue({"n": 1}, key="k", priority=1)
    [many_id] = ref.using(make_producer()).enqueue_many([{"n": 2}], key="k", priority=1)

    async def send_async() -> str:
        async with AsyncProducer(make_settings(queues=QUEUES)) as p:
            return await ref.using(p).enqueue({"n": 3}, key="k", priority=1)

    async_id = asyncio.run(send_async())
    jobs = _drain(redis_client, names.ready_key(namespace, "default", shard_for(b"k", 4, 1), 1))
    assert [(j.id, j.queue, j.task, j.args, j.key) for j in jobs] == [
        (sync_id, "default", "send", {"n": 1}, "k"), (many_id, "default", "send", {"n": 2}, "k"),
        (async_id, "default", "send", {"n": 3}, "k")]


async def test_a_push_after_a_script_flush_lands_once(make_producer, make_settings,
                                                      redis_client, namespace):
    # The push script goes as a bare EVALSHA; NOSCRIPT (a restart, a fail-over)
    # ran nothing, and the call that loads the script pushes each job once.
    from tests.integration.ingest.conftest import QUEUES

    producer = make_producer()
    producer.enqueue("default", "t", 0)
    redis_client.script_flush()
    ids = producer.enqueue_many("default", "t", [1, 2, 3])
    redis_client.script_flush()
    async with AsyncProducer(make_settings(queues=QUEUES)) as aio:
        ids += await aio.enqueue_many("default", "t", [4, 5])
    jobs = _all_ready(redis_client, namespace)
    assert sorted(j.id for j in jobs if j.args) == sorted(ids)
    assert sorted(j.args for j in jobs) == [0, 1, 2, 3, 4, 5]

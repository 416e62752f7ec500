"""``redis.wait_replicas``: a producer call returns only once that many replicas hold its
jobs, and says so in one line when they do not (real Redis, single and cluster)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
import redis
from aiohttp.test_utils import TestServer
from redis.crc import key_slot

from ingest import AsyncProducer, NotReplicated, Producer
from ingest.http import create_app
from jobpipe import names
from jobpipe.devstack.redis_cluster import cluster_nodes, move_slot, slot_primary
from jobpipe.envelope import decode
from tests.redis_modes import BOTH, CLUSTER, SINGLE

pytestmark = pytest.mark.integration

QUEUES = {"default": {"shards": 1}}
#: Replicas per primary: none on the single Redis, one on the test cluster.
REPLICAS = {SINGLE: 0, CLUSTER: 1}


def _ready(namespace: str, queue: str = "default") -> str:
    return names.ready_key(namespace, queue, 0)


@BOTH
async def test_more_replicas_than_there_are_refuse_in_one_line_and_the_jobs_were_written(
        make_settings, redis_client, namespace, redis_mode):
    # One replica more than the primary has: WAIT can only time out. On a cluster,
    # redis-py's own WAIT would ask every node and sum, and wrongly pass.
    settings = make_settings(queues=QUEUES, redis={
        "wait_replicas": REPLICAS[redis_mode] + 1, "wait_timeout_s": 0.2})
    with Producer(settings) as producer, pytest.raises(NotReplicated) as caught:
        producer.enqueue_many("default", "t", [1, 2, 3])
    async with AsyncProducer(settings) as aproducer:
        with pytest.raises(NotReplicated):
            await aproducer.enqueue("default", "t", 4)
        server = TestServer(create_app(settings, aproducer), host="127.0.0.1")
        await server.start_server()
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as http, \
                http.post("/v1/queues/default/jobs", data=orjson.dumps({"task": "t"}),
                          headers={"Content-Type": "application/json"}) as resp:
            status, answer = resp.status, await resp.json()
        await server.close()
    message = str(caught.value)
    assert "\n" not in message
    assert (f"confirmed the push to {_ready(namespace)} on {REPLICAS[redis_mode]} of "
            f"{REPLICAS[redis_mode] + 1} replicas within 0.2s") in message
    assert status == 503
    assert "redis.wait_replicas" in answer["error"]
    # Not re-sent and not dropped: each call's jobs are in the primary once.
    assert redis_client.llen(_ready(namespace)) == 5


@pytest.mark.parametrize("redis_mode", [CLUSTER])
async def test_a_confirmed_call_returns_once_the_replica_holds_its_jobs(
        make_settings, redis_client, namespace, redis_url):
    settings = make_settings(queues=QUEUES, redis={"wait_replicas": 1})
    with Producer(settings) as producer:
        ids = producer.enqueue_many("default", "t", list(range(300)))
    async with AsyncProducer(settings) as aproducer:
        ids.append(await aproducer.enqueue("default", "t", 300))
    # Read at once from the replica of the queue's primary: WAIT said it has them.
    seed = urlsplit(redis_url).port
    assert seed is not None
    primary = slot_primary(seed, key_slot(_ready(namespace).encode()))
    assert primary is not None
    (replica,) = [n for n in cluster_nodes(seed) if n.primary_id == primary.node_id]
    client = redis.Redis(host="127.0.0.1", port=replica.port)
    try:
        client.execute_command("READONLY")
        assert client.llen(_ready(namespace)) == len(ids) == 301
    finally:
        client.close()


@pytest.mark.parametrize("redis_mode", [CLUSTER])
def test_a_confirmed_call_follows_its_queue_to_the_primary_it_moved_to(
        make_settings, redis_client, namespace, redis_url):
    queue = f"moving{uuid.uuid4().hex[:8]}"  # a slot no other test writes to
    settings = make_settings(queues={queue: {"shards": 1}}, redis={"wait_replicas": 1})
    key = _ready(namespace, queue)
    slot = key_slot(key.encode())
    seed = urlsplit(redis_url).port
    assert seed is not None
    with Producer(settings) as producer:
        first = producer.enqueue(queue, "t", 1)  # the producer learns the slot's primary
        source = slot_primary(seed, slot)
        assert source is not None
        target = next(n for n in cluster_nodes(seed)
                      if n.role == "primary" and n.node_id != source.node_id)
        assert move_slot(source, slot, target.port) >= 1
        # Its slot table is stale now: the push meets MOVED and follows it.
        second = producer.enqueue(queue, "t", 2)
    moved_to = slot_primary(seed, slot)
    assert moved_to is not None
    assert moved_to.port == target.port
    assert sorted(decode(r).id for r in redis_client.lrange(key, 0, -1)) == sorted(
        [first, second])


@pytest.mark.parametrize("redis_mode", [CLUSTER])
def test_a_confirmed_call_follows_ask_to_where_its_migrating_keys_went(
        make_settings, redis_client, namespace, redis_url):
    queue = f"asking{uuid.uuid4().hex[:8]}"
    settings = make_settings(queues={queue: {"shards": 1}}, redis={"wait_replicas": 1})
    key = _ready(namespace, queue)
    slot = key_slot(key.encode())
    seed = urlsplit(redis_url).port
    assert seed is not None
    with Producer(settings) as producer:
        first = producer.enqueue(queue, "t", 1)
        source = slot_primary(seed, slot)
        assert source is not None
        target = next(n for n in cluster_nodes(seed)
                      if n.role == "primary" and n.node_id != source.node_id)
        src = redis.Redis(host="127.0.0.1", port=source.port)
        dst = redis.Redis(host="127.0.0.1", port=target.port)
        try:
            # Mid-migration: every key of the queue already on the target, the slot
            # not yet handed over. The source answers ASK; the push must follow it.
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                "KEYS", *keys)
            second = producer.enqueue(queue, "t", 2)
            dst.execute_command("ASKING")
            moved = [decode(r).id for r in dst.lrange(key, 0, -1)]
        finally:
            for client in (dst, src):
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
                client.close()
    assert sorted(moved) == sorted([first, second])

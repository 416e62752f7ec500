"""DirectReads: MGET over a connection of its own, and through the ordinary client
whenever that connection cannot serve (in use, killed)."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from jobpipe.direct_read import DirectReads

pytestmark = pytest.mark.integration


def _named_client(redis_url: str, name: str) -> redis.asyncio.Redis:
    """An asyncio client whose connections carry ``name`` (to find and kill them)."""
    return redis.asyncio.Redis.from_url(redis_url, client_name=name, socket_timeout=5.0)


async def mget(reads: DirectReads, keys: list[bytes]) -> list[bytes | None]:
    """The values of ``keys``, read through ``reads`` (an ``MGET``)."""
    return (await reads.execute([("MGET", *keys)]))[0]


def _connections(redis_client: redis.Redis, name: str) -> list[dict[str, str]]:
    return [c for c in redis_client.client_list() if c.get("name") == name]


async def test_reads_values_and_missing_keys_over_a_connection_of_its_own(
        redis_url, redis_client, namespace):
    redis_client.set(f"{namespace}:a", b"1")
    redis_client.set(f"{namespace}:c", b"3")
    client = _named_client(redis_url, namespace)
    try:
        reads = DirectReads(client)
        await client.ping()  # one pooled connection, idle again after the call
        keys = [f"{namespace}:{k}".encode() for k in "abc"]
        assert await mget(reads, keys) == [b"1", None, b"3"]
        assert await mget(reads, keys) == await client.mget(keys)
        # The pooled connection and the reads' own: the reads did not use the pool's.
        assert len(_connections(redis_client, namespace)) == 2
    finally:
        await client.aclose()
    assert _connections(redis_client, namespace) == []  # closed with the client


async def test_reads_at_once_each_get_their_own_answer(redis_url, redis_client, namespace):
    for i in range(20):
        redis_client.set(f"{namespace}:k{i}", str(i))
    client = _named_client(redis_url, namespace)
    try:
        reads = DirectReads(client)
        answers = await asyncio.gather(*(mget(reads, [f"{namespace}:k{i}".encode()])
                                         for i in range(20)))
        assert answers == [[str(i).encode()] for i in range(20)]
    finally:
        await client.aclose()


async def test_a_killed_connection_is_replaced_and_the_read_still_answers(
        redis_url, redis_client, namespace):
    redis_client.set(f"{namespace}:a", b"1")
    key = [f"{namespace}:a".encode()]
    client = _named_client(redis_url, namespace)
    try:
        reads = DirectReads(client)
        assert await mget(reads, key) == [b"1"]
        for conn in _connections(redis_client, namespace):
            redis_client.client_kill_filter(_id=conn["id"])
        assert await mget(reads, key) == [b"1"]  # through the ordinary client's reconnect
        assert await mget(reads, key) == [b"1"]  # and over its own connection again
        assert len(_connections(redis_client, namespace)) == 2
    finally:
        await client.aclose()


_SPIN = """local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > tonumber(ARGV[1])
return 1"""


async def test_a_read_cancelled_before_its_reply_never_answers_the_next_one(
        redis_url, redis_client, namespace):
    """The cancelled read's reply would answer the next call's keys: its connection goes."""
    redis_client.set(f"{namespace}:a", b"old")
    redis_client.set(f"{namespace}:b", b"new")
    client = _named_client(redis_url, namespace)
    busy = redis.Redis.from_url(redis_url)
    try:
        reads = DirectReads(client)
        assert await mget(reads, [f"{namespace}:a".encode()]) == [b"old"]  # connected
        spin = asyncio.create_task(asyncio.to_thread(busy.eval, _SPIN, 0, 1_500_000))
        await _until_busy(redis_url)
        read = asyncio.create_task(mget(reads, [f"{namespace}:a".encode()]))
        await asyncio.sleep(0.1)  # sent; Redis answers once the script is over
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        await spin
        assert await mget(reads, [f"{namespace}:b".encode()]) == [b"new"]
    finally:
        busy.close()
        await client.aclose()


async def _until_busy(redis_url: str) -> None:
    """Wait until Redis runs the spinning script: a PING is not answered at once."""
    while True:
        probe = redis.asyncio.Redis.from_url(redis_url)
        try:
            await asyncio.wait_for(probe.ping(), 0.05)
        except TimeoutError:
            return
        finally:
            await probe.aclose()
        await asyncio.sleep(0.01)

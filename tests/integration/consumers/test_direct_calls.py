"""DirectCalls: MGET over a connection of its own, and through the ordinary client
whenever that connection cannot serve (in use, killed)."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from jobpipe.direct_calls import DirectCalls
from tests.integration.client_list import assert_all_closed, connections_named

pytestmark = pytest.mark.integration


def _named_client(redis_url: str, name: str) -> redis.asyncio.Redis:
    """An asyncio client whose connections carry ``name`` (to find and kill them)."""
    return redis.asyncio.Redis.from_url(redis_url, client_name=name, socket_timeout=5.0)


async def mget(reads: DirectCalls, keys: list[bytes]) -> list[bytes | None]:
    """The values of ``keys``, read through ``reads`` (an ``MGET``)."""
    return (await reads.execute([("MGET", *keys)]))[0]


async def test_reads_values_and_missing_keys_over_a_connection_of_its_own(
        redis_url, redis_client, namespace):
    redis_client.set(f"{namespace}:a", b"1")
    redis_client.set(f"{namespace}:c", b"3")
    client = _named_client(redis_url, namespace)
    try:
        reads = DirectCalls(client)
        await client.ping()  # one pooled connection, idle again after the call
        keys = [f"{namespace}:{k}".encode() for k in "abc"]
        assert await mget(reads, keys) == [b"1", None, b"3"]
        assert await mget(reads, keys) == await client.mget(keys)
        # The pooled connection and the reads' own: the reads did not use the pool's.
        assert len(connections_named(redis_client, namespace)) == 2
    finally:
        await client.aclose()
    assert_all_closed(redis_client, namespace)  # closed with the client


async def test_reads_at_once_each_get_their_own_answer(redis_url, redis_client, namespace):
    for i in range(20):
        redis_client.set(f"{namespace}:k{i}", str(i))
    client = _named_client(redis_url, namespace)
    try:
        reads = DirectCalls(client)
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
        reads = DirectCalls(client)
        assert await mget(reads, key) == [b"1"]
        for conn in connections_named(redis_client, namespace):
            redis_client.client_kill_filter(_id=conn["id"])
        assert await mget(reads, key) == [b"1"]  # through the ordinary client's reconnect
        assert await mget(reads, key) == [b"1"]  # and over its own connection again
        assert len(connections_named(redis_client, namespace)) == 2
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
        reads = DirectCalls(client)
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


async def test_an_error_reply_is_raised_once_every_reply_is_read(
        redis_url, redis_client, namespace):
    """A WRONGTYPE amid a call's commands: raised after the other replies were read,
    so the connection stays in step; or returned in its place when asked."""
    redis_client.set(f"{namespace}:s", b"1")
    redis_client.rpush(f"{namespace}:l", b"x")
    client = _named_client(redis_url, namespace)
    try:
        calls = DirectCalls(client)
        commands = [("GET", f"{namespace}:s"), ("GET", f"{namespace}:l"),
                    ("GET", f"{namespace}:s")]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await calls.execute(commands)
        first, failed, last = await calls.execute(commands, raise_on_error=False)
        assert (first, last) == (b"1", b"1")
        assert isinstance(failed, redis.ResponseError)
        assert await mget(calls, [f"{namespace}:s".encode()]) == [b"1"]
        # One connection of its own the whole time: the error replies cost it nothing.
        assert len(connections_named(redis_client, namespace)) == 1
    finally:
        await client.aclose()


async def test_writes_and_scripts_go_over_the_same_connection(
        redis_url, redis_client, namespace):
    client = _named_client(redis_url, namespace)
    try:
        calls = DirectCalls(client)
        key = f"{namespace}:h"
        assert await calls.execute([("HSET", key, "f", 1), ("EXPIRE", key, 60),
                                    ("EVAL", "return redis.call('HGET', KEYS[1], 'f')", 1, key)]
                                   ) == [1, 1, b"1"]
        assert redis_client.hget(key, "f") == b"1"
        assert len(connections_named(redis_client, namespace)) == 1
    finally:
        await client.aclose()


async def test_a_call_unanswered_past_the_socket_timeout_gives_up_its_connection(
        redis_url, redis_client, namespace):
    """Redis busy longer than the client's socket timeout: the watchdog closes the
    connection (the call then goes through the client), and the next call opens a
    new one."""
    redis_client.set(f"{namespace}:a", b"1")
    # No retries: the client's own answer must not wait the spin out either.
    client = redis.asyncio.Redis.from_url(redis_url, client_name=namespace,
                                          socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
    busy = redis.Redis.from_url(redis_url)
    try:
        calls = DirectCalls(client)
        assert await mget(calls, [f"{namespace}:a".encode()]) == [b"1"]
        before = {c["id"] for c in connections_named(redis_client, namespace)}
        # Busy for 3 s: the watchdog (0.3 s) and then the client (0.3 s more) give
        # up long before, even on a loaded box.
        spin = asyncio.create_task(asyncio.to_thread(busy.eval, _SPIN, 0, 3_000_000))
        await _until_busy(redis_url)
        with pytest.raises(redis.RedisError):  # the client times out as well
            await mget(calls, [f"{namespace}:a".encode()])
        await spin
        assert await mget(calls, [f"{namespace}:a".encode()]) == [b"1"]
        after = {c["id"] for c in connections_named(redis_client, namespace)}
        assert before
        assert not before & after
    finally:
        busy.close()
        await client.aclose()

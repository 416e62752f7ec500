"""Jobs confirmed on ``redis.wait_replicas`` replicas before a producer says "accepted".

Redis ``WAIT n timeout`` counts the replicas holding every write *of the
connection it is sent on*. So the push and its ``WAIT`` go down one
connection, back to back (one round trip), to the primary serving the
queue's slot: the push script by body (``EVAL``: a promoted replica has no
script cache), then ``WAIT``. redis-py cannot do this by itself: its pools
give each command any connection, and its cluster client sends ``WAIT`` to
every node and sums the replies.

A connection taken from a cluster node follows no redirection by itself:

* ``MOVED`` (the slot lives elsewhere now; nothing was written): the slot
  table is refreshed and the call sent again;
* ``ASK`` (the slot is migrating and our keys are already on the target): the
  call goes to the target behind ``ASKING``;
* ``TRYAGAIN`` (the keys are split across a migrating slot) and connection
  errors read as "Redis down" and are retried until the deadline; on a
  cluster the slot table is refreshed first, since a primary may have failed
  over to its replica.

Both producers' shells call these; only the I/O differs between them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio.cluster
import redis.cluster
import redis.exceptions

from ingest.scripts import PUSH_LUA, PushReply, parse_reply
from jobpipe.errors import NotReplicated
from jobpipe.redact import redact_url
from jobpipe.redis_failures import REDIS_DOWN, is_out_of_memory
from jobpipe.settings import RedisSettings

#: Redirections followed within one call before giving up (a slot moving twice
#: while one call is sent is already unusual).
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Redirected:
    """The push was answered ``MOVED`` or ``ASK``: nothing was written."""

    host: str
    port: int
    ask: bool


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send the call: the key's primary, or the node an ``ASK`` named."""

    key: str
    ask: Redirected | None = None


def commands(keys: Sequence[Any], args: Sequence[Any], settings: RedisSettings,
             target: Target) -> list[tuple[Any, ...]]:
    """The commands of one confirmed push, in order: [``ASKING``], ``EVAL``, ``WAIT``."""
    push = ("EVAL", PUSH_LUA, len(keys), *keys, *args)
    wait = ("WAIT", settings.wait_replicas, round(settings.wait_timeout_s * 1000))
    return [("ASKING",), push, wait] if target.ask is not None else [push, wait]


def judge(replies: list[Any], settings: RedisSettings, key: str) -> PushReply | Redirected:
    """What the replies of :func:`commands` mean (error replies given as exceptions).

    Raises:
        NotReplicated: the jobs were written, but fewer replicas confirmed them.
        redis.exceptions.RedisError: any other error reply (``TRYAGAIN`` included).
    """
    if len(replies) == 3:  # behind ASKING
        _raise_error(replies[0])
        replies = replies[1:]
    pushed, acked = replies
    if isinstance(pushed, redis.exceptions.AskError):  # MovedError is one too
        return Redirected(pushed.host, pushed.port,
                          ask=not isinstance(pushed, redis.exceptions.MovedError))
    if isinstance(pushed, redis.exceptions.ResponseError) and is_out_of_memory(pushed):
        return PushReply(True, -1, [])
    _raise_error(pushed)
    reply = parse_reply(pushed)
    if reply.full:
        return reply  # nothing was written: nothing to confirm
    _raise_error(acked)
    if int(acked) < settings.wait_replicas:
        raise NotReplicated(
            f"Redis at {redact_url(settings.url)} confirmed the push to {key} on "
            f"{int(acked)} of {settings.wait_replicas} replicas within "
            f"{settings.wait_timeout_s:g}s (redis.wait_replicas); the primary holds them, "
            "but a fail-over could lose them")
    return reply


def _raise_error(reply: Any) -> None:
    if isinstance(reply, Exception):
        raise reply


def _node(client: Any, target: Target) -> Any:
    """The cluster node to send to (``client`` knows its slot table)."""
    if target.ask is not None:
        node = client.get_node(host=target.ask.host, port=target.ask.port)
        if node is not None:
            return node
    return client.get_node_from_key(target.key)


@contextmanager
def primary_connection(client: Any, target: Target) -> Iterator[Any]:
    """A connection to the primary of ``target`` (the client's own on a single Redis).

    A connection error on a cluster refreshes the slot table before it propagates.
    """
    if isinstance(client, redis.cluster.RedisCluster):
        pool = client.get_redis_connection(_node(client, target)).connection_pool
    else:
        pool = client.connection_pool
    conn = pool.get_connection()
    try:
        yield conn
    except REDIS_DOWN:
        refresh_slots(client)
        raise
    finally:
        pool.release(conn)


@asynccontextmanager
async def primary_connection_async(client: Any, target: Target) -> AsyncIterator[Any]:
    """The asyncio twin of :func:`primary_connection`."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.initialize()  # a no-op once the client knows the slots
        node = _node(client, target)
        conn = node.acquire_connection()
        try:
            yield conn
        except REDIS_DOWN:
            await refresh_slots_async(client)
            raise
        finally:
            node.release(conn)
        return
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        yield conn
    finally:
        await pool.release(conn)


def refresh_slots(client: Any) -> None:
    """Ask a cluster which node serves which slot now (nothing on a single Redis)."""
    if isinstance(client, redis.cluster.RedisCluster):
        client.nodes_manager.initialize()


async def refresh_slots_async(client: Any) -> None:
    """The asyncio twin of :func:`refresh_slots`."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.nodes_manager.initialize()

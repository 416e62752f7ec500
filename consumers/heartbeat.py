"""Workers' heartbeats in Redis: when each worker process was last heard from.

Kafka's group coordinator knows which workers are members, but not when one
last heartbeated. So every worker also writes its id and the time, every
:data:`INTERVAL_S`, into one ZSET (``names.workers_key``): one pipelined
``ZADD`` and ``ZREMRANGEBYSCORE`` per interval, which also forgets workers
silent for :data:`FORGET_AFTER_S`. A worker that stops cleanly removes its own
entry. Its id is also its Kafka consumer's ``client.id``, so the dashboard can
put a group member and its heartbeat on one row.

A failed beat is the worker's Redis trouble like any other
(:mod:`consumers.redis_trouble`): Redis down or full is logged and the next
beat tries again; a refusal (an ACL without ``ZADD``, a wrong password)
stops the worker instead of leaving it running unseen.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import redis
import redis.asyncio

from consumers.redis_trouble import RedisTrouble
from jobpipe import names

INTERVAL_S = 2.0
FORGET_AFTER_S = 600.0  # a worker silent this long (killed, host gone) leaves the set


def worker_id() -> str:
    """This process's worker id, ``host:pid`` (read at call time: forked children differ)."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(client: redis.asyncio.Redis[bytes], ns: str, member: str) -> None:
    """Record a heartbeat of ``member`` now, and forget long-silent workers."""
    now_ms = time.time_ns() // 1_000_000
    pipe = client.pipeline(transaction=False)
    pipe.zadd(names.workers_key(ns), {member: now_ms})
    pipe.zremrangebyscore(names.workers_key(ns), "-inf", now_ms - int(FORGET_AFTER_S * 1000))
    await pipe.execute()


async def heartbeat_loop(client: redis.asyncio.Redis[bytes], ns: str, member: str,
                         trouble: RedisTrouble) -> None:
    """Beat every :data:`INTERVAL_S` until cancelled, then remove ``member``.

    A failed beat or removal goes to ``trouble``: a missed beat only ages the
    entry, a refusal stops the worker (and the beats: they would be refused
    again). A cancel that redis-py absorbed mid-beat is repeated by the
    worker's shutdown (:mod:`consumers.cancelling`).
    """
    try:
        while not trouble.refused:
            try:
                await beat(client, ns, member)
            except Exception as exc:
                trouble.note("writing the worker heartbeat", exc)
            await asyncio.sleep(INTERVAL_S)
    finally:
        try:  # a clean stop: the worker is gone, not silent
            await client.zrem(names.workers_key(ns), member)
        except Exception as exc:
            trouble.note("removing the worker heartbeat", exc)


def last_heartbeats(client: redis.Redis[bytes], ns: str) -> dict[str, int]:
    """Every worker id in the set and its last heartbeat (ms since the epoch)."""
    scored = client.zrange(names.workers_key(ns), 0, -1, withscores=True)
    return {member.decode(): int(ms) for member, ms in scored}

"""One connection of a blocking client, kept out of its pool for one thread's calls.

A bridge sends a take and an ack script per batch: at a low rate, per job.
redis-py's pool wraps each checkout and release in a lock, a health check and
observability hooks. On a 2-core box with 5 ms between calls (a bridge at 200
jobs/s), one ``EVALSHA`` cost 313 us of CPU through the pool and 254 us on a
kept connection (``scripts/redis_call_cost.py``; docs/benchmarks.md, "The
worker's own round trips, and the bridge's kept connection").

The kept connection serves the thread that made it, one call at a time; any
other thread, or a call made while it is in use, gets a pooled one. Before
each use it is checked as the pool checks a connection it hands out: one that
has something to read (the server closed it, or a stray reply) is dropped and
the send reconnects. A call that fails on it leaves it as redis-py does, which
disconnects a connection whose reply is lost or half read. The pool still
closes it with the client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis


class KeptConnection:
    """A connection of ``client``'s pool, kept for the thread that makes this.

    Args:
        client: a blocking client (on a Redis Cluster, script calls never ask for it).
    """

    def __init__(self, client: redis.Redis[bytes]) -> None:
        self._client = client
        self._owner = threading.get_ident()
        self._conn: Any = None
        self._in_use = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection to send one call on and read its replies from."""
        if self._in_use or threading.get_ident() != self._owner:
            with pooled(self._client.connection_pool) as conn:
                yield conn
            return
        conn = self._conn
        if conn is None:
            conn = self._conn = self._client.connection_pool.get_connection()
        elif _stale(conn):
            conn.disconnect()  # the send connects again
        self._in_use = True
        try:
            yield conn
        finally:
            self._in_use = False


@contextmanager
def pooled(pool: Any) -> Iterator[Any]:
    """A connection from ``pool`` (a blocking client's), released after use."""
    conn = pool.get_connection()
    try:
        yield conn
    finally:
        pool.release(conn)


def _stale(conn: Any) -> bool:
    """Whether ``conn`` has something to read (a stray reply) or was closed by the
    server (redis-py raises on that), as the pool's ``ensure_connection`` tells."""
    try:
        return bool(conn.can_read())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True

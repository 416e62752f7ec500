"""Reads on a job's way to its handler, over one connection kept for them.

redis-py's asyncio client wraps each command in a pool checkout and release
(each under a lock), a retry wrapper, observability hooks and, with a socket
timeout, an ``asyncio.wait_for`` that on Python 3.11 writes the command from a
Task of its own: a one-key ``MGET`` took ~210 us of loop CPU that way against
~75 us over a bare connection (docs/benchmarks.md, "admission"). A read that
every job waits for pays that once per batch, at a low rate once per job.
:class:`DirectReads` takes one connection out of the client's pool for good
(the pool still closes it with the client) and bounds each call with one
``asyncio.timeout`` instead.

Nothing else changes: the same connection class, credentials and TLS; on a
Redis Cluster, while the connection is in use, or on any error, the call goes
through the ordinary client, with its reconnects and retries (a Redis that
does not answer thus costs one socket timeout more than before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio

from jobpipe.connections import is_cluster

Command = Sequence[bytes | str]  # its name first, as str (a cluster client routes by it)


class DirectReads:
    """Reads (``MGET``, ``HMGET``, sent with :meth:`execute`) over a connection of its own.

    Args:
        client: the asyncio client whose pool (and settings) to use.
    """

    def __init__(self, client: redis.asyncio.Redis[bytes]) -> None:
        self._client = client
        self._direct = not is_cluster(client)
        self._conn: Any = None
        self._timeout_s: float | None = None  # the client's socket timeout, per call
        self._busy = False

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """The replies of ``commands``, in order, sent in one round trip."""
        if not self._direct or self._busy:
            return await self._through_client(commands)
        self._busy = True
        try:
            return await self._execute(commands)
        except BaseException as exc:
            # A reply may still be on its way (a timeout, or a cancel): read by the
            # next call it would answer other keys, so the connection goes (redis-py's
            # read_response drops it too when cancelled mid-read; the send is ours).
            if self._conn is not None:
                await self._conn.disconnect(nowait=True)
            if not isinstance(exc, Exception):
                raise  # cancelled: stop, as the ordinary client would
            return await self._through_client(commands)  # it reconnects and retries
        finally:
            self._busy = False

    async def _through_client(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return cast("list[Any]", await pipe.execute())

    async def _execute(self, commands: Sequence[Command]) -> list[Any]:
        conn = self._conn
        if conn is None:
            conn = self._conn = await self._client.connection_pool.get_connection()
            # Bounded below as a whole; a per-write timeout would be a Task per call.
            self._timeout_s = conn.socket_timeout
            conn.socket_timeout = None
        async with asyncio.timeout(self._timeout_s):
            if not conn.is_connected:
                await conn.connect()
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            return [await conn.read_response() for _ in commands]

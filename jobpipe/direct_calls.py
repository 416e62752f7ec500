"""Calls on a job's way through a worker, over one connection kept for them.

A worker reads its done markers once per batch and writes them once per flush:
at a low rate, each once per job. On a 2-core box with 5 ms between calls (a
worker at 200 jobs/s), one ``EVALSHA`` cost 456 us of CPU through redis-py's
pool (a checkout and release, each under a lock, a retry wrapper, observability
hooks, a timeout, a stream reader and parser), 359 us on a redis-py connection
kept out of the pool (as before), and 228 us this way
(``scripts/redis_call_cost.py``; docs/benchmarks.md, "The worker's own round
trips").

So :class:`DirectCalls` lets redis-py open and set up one connection (TLS,
credentials, database, client name), takes it out of the pool for good, and then
talks on its transport: commands packed by hiredis, replies (RESP2 or RESP3,
whichever the client speaks) parsed with redis-py's error classes, calls
answered in the order they were sent (several may be in flight at once). The
pool still closes it with the client.

When the connection fails (a timeout, a reset, garbage from the server), it is
closed, and each call in flight goes through the ordinary client, with its
reconnects and retries. A command sent here may thus run twice: only reads and
writes that set what they set belong here. A call cancelled while it waits
leaves its reply to be read and dropped; the connection stays. On a Redis
Cluster, a client with a credential provider (it may send ``AUTH`` on the
connection at any time), or a connection not laid out as this expects, every
call goes through the client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
import redis.asyncio
from redis._parsers import BaseParser
from redis.exceptions import InvalidResponse

from jobpipe.connections import is_cluster

Command = Sequence[bytes | str | int]  # its name first, as str (a cluster client routes by it)


class DirectCalls:
    """Commands (reads, idempotent writes), sent with :meth:`execute` over a
    connection of their own.

    Args:
        client: the asyncio client whose pool (and settings) to use.
    """

    def __init__(self, client: redis.asyncio.Redis[bytes]) -> None:
        self._client = client
        self._direct = not is_cluster(client)
        self._conn: Any = None  # redis-py's connection, out of the pool for good
        self._line: _Line | None = None  # its transport, while it is ours
        self._connecting = False

    async def execute(self, commands: Sequence[Command],
                      raise_on_error: bool = True) -> list[Any]:
        """The replies of ``commands``, in order, sent in one round trip.

        Args:
            raise_on_error: raise the first error reply (once every reply is
                read); else return error replies as exceptions in their place.
        """
        line = self._line
        if line is None or line.lost:
            line = await self._open()
        if line is None:
            return await self._through_client(commands, raise_on_error)
        try:
            replies = await line.call(commands)
        except ConnectionError:
            return await self._through_client(commands, raise_on_error)
        if raise_on_error:
            failed = next((r for r in replies if isinstance(r, Exception)), None)
            if failed is not None:
                raise failed
        return replies

    async def _open(self) -> _Line | None:
        """The line to send on, (re)connected; None: go through the client."""
        if not self._direct or self._connecting:
            return None
        self._connecting = True
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = await self._client.connection_pool.get_connection()
            elif conn.is_connected:  # a lost line's connection: start afresh
                await conn.disconnect(nowait=True)
            await conn.connect()
            self._line = _Line.take(conn)
            if self._line is None:
                self._direct = False  # not a layout we know: the client, from now on
            return self._line
        except Exception:
            return None  # the client reconnects and retries, or raises
        finally:
            self._connecting = False

    async def _through_client(self, commands: Sequence[Command],
                              raise_on_error: bool) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return cast("list[Any]", await pipe.execute(raise_on_error=raise_on_error))


@dataclass(eq=False)
class _Call:
    future: asyncio.Future[list[Any]]
    expected: int
    sent_at: float
    replies: list[Any] = field(default_factory=list)


class _Line(asyncio.Protocol):
    """One connection's transport, taken over: calls out, replies back in order."""

    @classmethod
    def take(cls, conn: Any) -> _Line | None:
        """Take over ``conn``'s transport (just connected, nothing unread), or None."""
        writer = getattr(conn, "_writer", None)
        transport = getattr(writer, "transport", None)
        encoder = getattr(conn, "encoder", None)
        if (transport is None or encoder is None
                or getattr(conn, "credential_provider", None) is not None):  # may re-auth
            return None
        reader = hiredis.Reader(protocolError=InvalidResponse,
                                replyError=BaseParser.parse_error,
                                **({"encoding": encoder.encoding,
                                    "errors": encoder.encoding_errors}
                                   if encoder.decode_responses else {}))
        line = cls(transport, transport.get_protocol(), reader, conn.socket_timeout)
        transport.set_protocol(line)
        return line

    def __init__(self, transport: asyncio.Transport, owner: asyncio.BaseProtocol,
                 reader: hiredis.Reader, timeout_s: float | None) -> None:
        self._transport = transport
        self._owner = owner  # redis-py's protocol: it hears of the close
        self._reader = reader
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._calls: deque[_Call] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self.lost = False

    async def call(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to ``commands``; ConnectionError if the line fails first."""
        if self.lost:
            raise ConnectionError("the connection was lost")
        loop = self._loop
        call = _Call(loop.create_future(), len(commands), loop.time())
        self._calls.append(call)
        # (hiredis packs a tuple of any length; its type stub says one element)
        self._transport.write(b"".join([hiredis.pack_command(cast(Any, tuple(c)))
                                        for c in commands]))
        if self._watchdog is None and self._timeout_s is not None:
            self._watchdog = loop.call_later(self._timeout_s, self._watch)
        return await call.future

    def _watch(self) -> None:
        """Fail the line once its oldest call has waited out the socket timeout."""
        self._watchdog = None
        if not self._calls or self.lost:
            return
        assert self._timeout_s is not None
        left = self._calls[0].sent_at + self._timeout_s - self._loop.time()
        if left > 0:
            self._watchdog = self._loop.call_later(left, self._watch)
        else:
            self._transport.abort()  # connection_lost fails every call in flight

    def data_received(self, data: bytes) -> None:
        reader, calls = self._reader, self._calls
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except InvalidResponse:
                self._transport.abort()
                return
            if reply is False:
                return
            if isinstance(reply, hiredis.PushNotification):
                continue  # RESP3: not a reply (nothing here subscribes or tracks keys)
            if not calls:  # a reply nobody asked for: out of step
                self._transport.abort()
                return
            call = calls[0]
            call.replies.append(reply)
            if len(call.replies) == call.expected:
                calls.popleft()
                if not call.future.done():  # else cancelled: its reply is dropped
                    call.future.set_result(call.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        while self._calls:
            future = self._calls.popleft().future
            if not future.done():
                future.set_exception(ConnectionError(f"the connection was lost: {exc}"))
        self._owner.connection_lost(exc)  # redis-py's disconnect waits for this

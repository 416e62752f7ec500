"""An idle bridge sleeps until there is work: a push, or a delayed job coming due.

Every push (the push script and the MULTI path of :mod:`ingest`) adds the one
member of its queue's wake key (:func:`jobpipe.names.wake_key`). An idle
bridge blocks in one ``BZPOPMIN`` on the wake keys of its queues, so it wakes
within a round trip of a job landing instead of on a poll interval. A wake-up
raised while the bridge was busy stays in Redis until its next wait, which then
returns at once: a wake-up is never lost; at worst one take finds nothing.

The wait also ends when the earliest delayed job is due (a delayed push raises
the wake too, so an earlier one added meanwhile makes the bridge look again),
and after ``longest_s`` (heartbeats). The due times are read in the same write
that starts the wait (a ``ZRANGE`` per delayed set ahead of the ``BZPOPMIN``).
When a delayed job is due already, the wait is left running and the bridge
promotes first; the next wait, or :meth:`Waker.woken`, reads it (unless a take
rides behind it, below: that wait is ended and read at once). Redis checks
blocking timeouts only ``hz`` times a second (100 ms late at the default ``hz
10``), so the timeout is kept here, on the socket: when it passes, ``CLIENT
UNBLOCK`` ends the wait. :meth:`Waker.interrupt` (a byte on a pipe: safe in a
signal handler) ends it too, so a bridge asked to stop does not sleep out its
wait first.

A bridge of one plain queue sends its take script in the same write, behind
the ``BZPOPMIN`` (``ahead``): Redis runs it the moment the wait ends, so a job
that wakes the bridge is taken in the wake-up's own round trip instead of one
more (~0.3 ms at a low rate, docs/benchmarks.md). Takes must reach Redis in the
order the bridge learns of them (acks trim in-flight lists by count), so
:meth:`Waker.wait` reads the reply of a take sent ahead before it returns,
whatever ends the wait. A wait that fails in any way once the take was sent
raises :class:`~bridge.take.OutcomeUnknown`: the take may have run.

The same bridge sends the ack of what Kafka just took first in that write
(``first``): at a low rate every job ends in an idle wait, so its ack costs
no round trip of its own. Its reply is read with the due times, before the
wait blocks, and handed to the bridge at once; until then a failure is an
unknown outcome too.

On a Redis Cluster one ``BZPOPMIN`` may only name keys of one slot, so the wake
keys are grouped by slot (:func:`jobpipe.connections.group_by_slot`; a single
Redis is one group) and the bridge blocks on one connection per group, each to
the node serving that slot, all in one ``select``. The first to answer ends the
wait; the others are unblocked on their own nodes. A queue with ``shard_slots``
has a wake key (and a delayed set) per shard, under the shard's hash tag, so
each push raises the wake of the shard it wrote in its own script.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hiredis
import redis
from redis.connection import AbstractConnection
from redis.exceptions import ResponseError

from bridge.take import Fenced, OutcomeUnknown
from jobpipe import names
from jobpipe.connections import group_by_slot, node_client
from jobpipe.topology import QueueSpec

# Redis's own timeout only backs up ours (a lost CLIENT UNBLOCK must not block forever).
BACKSTOP_S = 5.0
# An unblock that found no wait is tried again this often, this long (_end_wait).
UNBLOCK_RETRY_S = 0.0005
UNBLOCK_TRIES_S = 1.0
# What :attr:`Waker.ahead_reply` holds when no command was sent ahead, or none answered;
# and what a ``first`` command's reader gets when it could not be sent.
NOT_SENT: Any = object()
# A command to send first in a wait's write, and what reads its reply (an error
# reply as its exception, NOT_SENT when it was not sent) before the wait blocks.
First = tuple[tuple[Any, ...], Callable[[Any], None]]


def wake_client_name(bridge_name: str) -> str:
    """The client name of a bridge's waiting connection."""
    return f"jobpipe-bridge-wait:{bridge_name}"


@dataclass
class _Blocked:
    """One dedicated waiting connection: the wake keys of one slot, on their node."""

    keys: list[str]
    delayed: list[str]  # the delayed sets of the same queues and slots: the same node
    node: redis.Redis[bytes]
    conn: AbstractConnection
    conn_id: int
    armed: bool = False  # a BZPOPMIN is outstanding on it
    ahead: bool = False  # a command sent behind it is outstanding too
    first: bool = False  # a command sent ahead of it is unread

    def fileno(self) -> int:
        return int(self.conn._sock.fileno())  # type: ignore[attr-defined]


class Waker:
    """Waits on one dedicated connection for the queues' wake-ups or the next due time.

    Args:
        client: the bridge's client (the pool of the node of each wake key makes
            the dedicated connections).
        ns: namespace.
        specs: the bridge's queues.
        name: the connection's client name (``CLIENT LIST`` shows who waits).
    """

    def __init__(self, client: redis.Redis[bytes], ns: str, specs: list[QueueSpec],
                 name: str) -> None:
        self._client = client
        self._name = name
        self._delayed_of = {names.wake_key(ns, s.name, slot): names.delayed_key(ns, s.name, slot)
                            for s in specs for slot in s.slots}
        wake_keys = list(self._delayed_of)
        self._wake_groups = group_by_slot(client, wake_keys)
        self._blocked: list[_Blocked] = []
        # The reply of the command the last wait sent ahead (an error reply as its
        # exception), else NOT_SENT; read by the caller once the wait returned.
        self.ahead_reply: Any = NOT_SENT
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        os.set_blocking(self._pipe_w, False)

    def _due_ms(self, delayed_keys: list[str]) -> int | None:
        """When the earliest job of ``delayed_keys`` is due (epoch ms), through the client."""
        pipe = self._client.pipeline(transaction=False)
        for key in delayed_keys:
            pipe.zrange(key, 0, 0, withscores=True)
        return _earliest([int(first[0][1]) if first else None for first in pipe.execute()])

    def wait(self, longest_s: float, ahead: tuple[Any, ...] | None = None,
             first: First | None = None) -> bool:
        """Block until a push wakes the bridge, a delayed job is due, or ``longest_s``.

        Args:
            ahead: a command to run the moment the wait ends (the take script),
                sent in the wait's own write, or behind a wait already running.
                Sent only when there is one wait (so the command's keys live on
                its node); its reply is in :attr:`ahead_reply` when this returns.
            first: a command to run before the wait starts (the ack script) and
                its reader, called once its reply is read, before the wait
                blocks. Sent only in the write of a new single wait (so its keys
                live on that node); else the reader gets :data:`NOT_SENT` first.

        Returns:
            True when a push woke it (there may be jobs to take), False when
            the time ran out (a delayed job may be due).

        Raises:
            OutcomeUnknown: anything failed once ``ahead`` or ``first`` was sent,
                before its reply was read.
            Fenced: as ``first``'s reader raised it (what was sent ahead is fenced too).
        """
        self.ahead_reply = NOT_SENT
        try:
            blocked = self._connections()
            running = [key for each in blocked if each.armed for key in each.delayed]
            fresh = [each for each in blocked if not each.armed]
            if len(blocked) != 1:
                ahead = None
            if first is not None and (len(blocked) != 1 or running):
                first[1](NOT_SENT)
                first = None
            scores = [self._arm_reading_due(each, longest_s, ahead, first) for each in fresh]
            if running:  # armed while waiting for Kafka: their sets are read apart
                scores.append(self._due_ms(running))
                if ahead is not None:  # behind its BZPOPMIN: Redis runs it as that ends
                    _send_ahead(blocked[0], ahead)
            due_ms = _earliest(scores)
            timeout_s = longest_s
            if due_ms is not None:
                timeout_s = min(timeout_s, (due_ms - time.time_ns() // 1_000_000) / 1000)
            if timeout_s <= 0 and ahead is None:
                return False  # promotion first; the waits run on
            # A take sent ahead is read before the bridge takes again, so its wait
            # is ended now rather than left running (_end_wait).
            ready = _ready(blocked, [self._pipe_r], max(timeout_s, 0.0))
            for each in blocked:
                if each not in ready:  # its wait ends with a nil reply
                    _end_wait(each)
            woke = [self._reply(each) for each in blocked]
            return any(woke)
        except BaseException as exc:
            unread = any(each.ahead or each.first for each in self._blocked)
            self._drop()  # a half-read reply must not meet the next command
            # Sent: whatever failed since, the script may have run. A fenced
            # bridge's scripts all answer "fenced": nothing ran (the ack and the
            # take sent ahead are of one queue and slot, one owners set).
            if unread and not isinstance(exc, Fenced):
                raise OutcomeUnknown(f"a script sent with the wait: {exc}") from exc
            raise

    @staticmethod
    def _arm_reading_due(each: _Blocked, longest_s: float, ahead: tuple[Any, ...] | None,
                         first: First | None) -> int | None:
        """Start one wait, with ``first`` and the ``ZRANGE`` of each of its delayed
        sets in the same write ahead of it (and ``ahead`` behind it); hands
        ``first``'s reply to its reader and returns the earliest due time among
        the sets (epoch ms).

        At a low rate every job ends in a wait: one round trip for both instead
        of a pipeline through the client and then the wait (a small saving, ~3%
        of the bridge's CPU at 200 jobs/s in two pairs; docs/benchmarks.md).
        """
        commands: list[tuple[Any, ...]] = [] if first is None else [first[0]]
        commands += [("ZRANGE", key, 0, 0, "WITHSCORES") for key in each.delayed]
        commands.append(("BZPOPMIN", *each.keys, longest_s + BACKSTOP_S))
        if ahead is not None:
            commands.append(ahead)
        # hiredis packs in C: redis-py's pack_commands encodes each argument in
        # Python, ~60 calls a job here once the take rode along (cProfile).
        packed: Any = [b"".join([hiredis.pack_command(c) for c in commands])]  # stubs: str
        # Set first: a send may fail half done.
        each.armed, each.ahead, each.first = True, ahead is not None, first is not None
        each.conn.send_packed_command(packed)
        if first is not None:
            reply = _reply_or_error(each.conn)
            each.first = False
            first[1](reply)
        return _earliest([_first_score(each.conn.read_response()) for _ in each.delayed])

    def arm(self, longest_s: float) -> list[_Blocked]:
        """Start the waits that are not running yet; they run on while the bridge
        does other work, and a connection turns readable once a push woke it.

        A bridge waiting for Kafka's reports checks them with :meth:`woken`
        between polls: a push then costs no Redis command until it happens.
        """
        blocked = self._connections()
        for each in blocked:
            if not each.armed:
                each.conn.send_command("BZPOPMIN", *each.keys, longest_s + BACKSTOP_S)
                each.armed = True
        return blocked

    def woken(self) -> bool:
        """Whether a running wait (see :meth:`arm`) ended with a push; never blocks.
        A nil reply (Redis's backstop timeout) ends a wait too: re-armed next time."""
        armed = [each for each in self._blocked if each.armed]
        if not armed:
            return False
        try:
            woke = [self._reply(each) for each in _ready(armed, [], 0.0)
                    if isinstance(each, _Blocked)]
            return any(woke)
        except BaseException:
            self._drop()
            raise

    def _reply(self, each: _Blocked) -> bool:
        """Read the end of ``each``'s wait (and the reply of what was sent ahead)."""
        woke = each.conn.read_response() is not None
        each.armed = False
        if each.ahead:
            self.ahead_reply = _reply_or_error(each.conn)
            each.ahead = False
        return woke

    def _connections(self) -> list[_Blocked]:
        if not self._blocked:
            for keys in self._wake_groups:
                node = node_client(self._client, keys[0])
                conn = node.connection_pool.make_connection()
                delayed = [self._delayed_of[key] for key in keys]
                self._blocked.append(_Blocked(keys, delayed, node, conn, 0))  # so _drop closes it
                conn.connect()
                conn.send_command("CLIENT", "SETNAME", self._name)
                conn.read_response()
                conn.send_command("CLIENT", "ID")
                self._blocked[-1].conn_id = int(conn.read_response())
        return self._blocked

    def interrupt(self) -> None:
        """End the current wait and every later one at once (any thread, or a
        signal handler): the bridge is stopping."""
        if self._pipe_w < 0:
            return
        with contextlib.suppress(OSError):  # full: interrupted already; closed: stopped
            os.write(self._pipe_w, b"x")

    def _drop(self) -> None:
        blocked, self._blocked = self._blocked, []
        for each in blocked:
            each.conn.disconnect()

    def close(self) -> None:
        """Drop the dedicated connections and the interrupt pipe."""
        self._drop()
        pipe_w, self._pipe_w = self._pipe_w, -1
        if pipe_w >= 0:
            os.close(pipe_w)
            os.close(self._pipe_r)


def _send_ahead(each: _Blocked, ahead: tuple[Any, ...]) -> None:
    """Send ``ahead`` behind the BZPOPMIN already running on ``each``."""
    each.ahead = True  # set first: a send may fail half done
    each.conn.send_packed_command([hiredis.pack_command(ahead)])


def _end_wait(each: _Blocked) -> None:
    """``CLIENT UNBLOCK`` the wait of ``each``, which then answers nil.

    Redis may not have read its ``BZPOPMIN`` yet: a write over ~16 kB (many
    keys) is read in parts, and a wait sent a moment ago may still be on its
    way. An unblock then ends nothing and the wait would run its full time, so
    it is tried again until it ends the wait, or the wait answered by itself
    (a push came), for at most :data:`UNBLOCK_TRIES_S`.
    """
    deadline = time.monotonic() + UNBLOCK_TRIES_S
    while not each.node.client_unblock(each.conn_id):
        if each.conn.can_read(0) or time.monotonic() >= deadline:
            return
        time.sleep(UNBLOCK_RETRY_S)


def _reply_or_error(conn: AbstractConnection) -> Any:
    """The next reply on ``conn``, an error reply as its exception (read whole:
    the connection stays in step)."""
    try:
        return conn.read_response()
    except ResponseError as exc:
        return exc


def _first_score(reply: object) -> int | None:
    """The score of a raw ``ZRANGE key 0 0 WITHSCORES`` reply: ``[member, score]``
    (RESP2) or ``[[member, score]]`` (RESP3); ``None`` for an empty set."""
    if not isinstance(reply, list) or not reply:
        return None
    score = reply[0][1] if isinstance(reply[0], list) else reply[1]
    return int(float(score))


def _ready(blocked: list[_Blocked], others: list[int],
           timeout_s: float) -> list[_Blocked | int]:
    """Which of ``blocked`` (and file descriptors ``others``) have a reply, waiting up
    to ``timeout_s``. A reply that came in the same read as the ``ZRANGE`` replies
    ahead of it is in the parser's buffer already and its socket is quiet, so the
    buffers are looked at before ``select``."""
    buffered: list[_Blocked | int] = [each for each in blocked if each.conn.can_read(0)]
    if buffered:
        return buffered
    waitables: list[_Blocked | int] = [*blocked, *others]
    ready, _, _ = select.select(waitables, [], [], timeout_s)
    return ready


def _earliest(scores: list[int | None]) -> int | None:
    """The earliest of the due times found (epoch ms), ``None`` for none."""
    return min((s for s in scores if s is not None), default=None)

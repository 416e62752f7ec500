"""Where jobs go, and the one script call that puts them there (sans-I/O).

A :class:`QueueLayout` holds a queue's key names (from :mod:`jobpipe.names`);
a :class:`PlanBuilder` turns placed jobs into the ``KEYS``/``ARGV`` of
:data:`ingest.scripts.PUSH_LUA`, merging consecutive jobs bound for the same
list into one variadic push so order within a list is the order given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jobpipe import names
from jobpipe.jobstatus import by_state_hash, record_ttl_s
from jobpipe.routing import Routes
from jobpipe.topology import QueueSpec

Arg = bytes | str | int
HEADER_ARGS = 5  # max_backlog, nb, tenant prefix, registry index, records may exist
RECORDS_MAY_EXIST = 4  # the header's index of that flag (PushPlan.may_have_run)
# Jobs per LPUSH of a MULTI push: Redis parses one chunk while the next is framed.
MULTI_CHUNK_JOBS = 4096
_CRLF = b"\r\n"
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


@dataclass(frozen=True, slots=True)
class QueueLayout:
    """The Redis keys of one queue.

    Attributes:
        spec: the queue.
        routes: its ready lists and the rule that picks one (:mod:`jobpipe.routing`).
        delayed: the delayed ZSET.
        tenants: the fair queue's tenant registry.
        wake: the wake-up of the queue's idle bridges.
        slot: the shard whose hash tag ``delayed``, ``wake`` and the unique
            windows carry (queues with ``shard_slots``), else ``None``.
    """

    spec: QueueSpec
    namespace: str
    routes: Routes
    delayed: str
    tenants: str
    wake: str
    slot: int | None = None

    @classmethod
    def of(cls, namespace: str, spec: QueueSpec, slot: int | None = None) -> QueueLayout:
        """Build the layout of ``spec`` in ``namespace`` (of one shard's slot)."""
        q = spec.name
        return cls(spec, namespace, Routes.of(namespace, spec),
                   names.delayed_key(namespace, q, slot), names.tenants_key(namespace, q),
                   names.wake_key(namespace, q, slot), slot)

    def unique(self, idempotency_key: str) -> str:
        """The unique-job window key of an idempotency key."""
        return names.unique_key(self.namespace, self.spec.name, idempotency_key, self.slot)


@dataclass(slots=True)
class PushPlan:
    """One script call, ready to send (or to spool).

    Attributes:
        queue: the queue every job belongs to.
        keys, args: ``KEYS`` and ``ARGV`` of the push script.
        ids: the job ids, in the caller's order.
        unique_jobs: index in ``ids`` of each unique job, in script order.
        lists: for a plan of plain pushes only, ``(list key, jobs)`` in order:
            such a plan may go as MULTI/LPUSH/EXEC instead of the script.
        backlog_keys: how many of ``keys`` are ready lists to count.
        wake: the queue's bridge wake-up key (:func:`jobpipe.names.wake_key`),
            raised after the pushes; ``None`` raises none.
        records: ``(state hash, ttl_s, record, ids)``: the state records the
            pushes start (queues with ``track_status``), as the script's ``S``.
        parts: a queue with ``shard_slots``: one script call per hash slot, sent
            in order (``keys``/``args`` are then empty; see :class:`SlotsBuilder`).
        backlog_lists: with ``parts``: every ready list the high-water mark
            counts, read before the first part is sent.
        sent: with ``parts``: how many were answered; a retry (or the spool)
            goes on from there, so a part that was written is not written again.
        sent_uniques: with ``parts``: the unique ids the answered parts replied.
        records_may_exist: the call may have run before (an attempt whose reply
            was lost, or a spooled call): state records are then written only
            where none exists, as a later stage may have moved them on. A
            call's first attempt writes them blindly: its job ids are new.
    """

    queue: str
    keys: list[str]
    args: list[Arg]
    ids: list[str]
    unique_jobs: list[int] = field(default_factory=list)
    lists: list[tuple[str, list[bytes]]] | None = None
    backlog_keys: int = 0
    wake: str | None = None
    records: list[tuple[str, int, str, list[str]]] = field(default_factory=list)
    parts: list[PushPlan] = field(default_factory=list)
    backlog_lists: list[str] = field(default_factory=list)
    sent: int = 0
    sent_uniques: list[str] = field(default_factory=list)
    records_may_exist: bool = False

    def may_have_run(self) -> None:
        """Note that this call (or a part of it) may have run: a retry or the
        spool must not write a state record over one a later stage moved on."""
        self.records_may_exist = True
        for call in self.parts or [self]:
            if call.args:
                call.args[RECORDS_MAY_EXIST] = 1
            call.records_may_exist = True

    def calls(self) -> list[PushPlan]:
        """The script calls still to make: the parts not answered yet, or this plan."""
        return self.parts[self.sent :] if self.parts else [self]

    def gate(self) -> tuple[list[str], list[Arg]]:
        """``KEYS``/``ARGV`` of a script call that only checks the high-water mark."""
        return self.keys[: self.backlog_keys], self.args[:HEADER_ARGS]

    def multi_commands(self) -> Iterator[bytes]:
        """This plan of plain pushes as one MULTI transaction in RESP, ready to write.

        ``MULTI``, an ``LLEN`` per ready list to count, an ``LPUSH`` per list and
        chunk of :data:`MULTI_CHUNK_JOBS` jobs (consecutive LPUSHes keep the
        list's order), an ``HSET hash (id record)...`` per chunk of
        :attr:`records` (``HSETNX`` per job when :attr:`records_may_exist`) and an
        ``EXPIRE`` per hash, the ``ZADD`` of
        :attr:`wake`, ``EXEC``; one piece per
        command, made as it is written, so Redis parses a chunk while the next
        is framed. Framing here costs a
        dict lookup and a join per job (~130 ns for a 260-byte job), where
        redis-py's pipeline packer (a generator over every argument, then
        hiredis) took ~360 ns.
        :meth:`multi_backlog` reads the :meth:`multi_replies` replies.
        """
        assert self.lists is not None
        yield _MULTI + b"".join(_command(b"LLEN", key.encode())
                                for key in self.keys[: self.backlog_keys])
        frames = _Frames()
        for key, jobs in self.lists:
            head = _bulk(key.encode())
            for start in range(0, len(jobs), MULTI_CHUNK_JOBS):
                chunk = jobs[start : start + MULTI_CHUNK_JOBS]
                parts = [_CRLF] * (3 * len(chunk))  # $<len> CRLF, job, CRLF
                parts[0::3] = map(frames.__getitem__, map(len, chunk))
                parts[1::3] = chunk
                yield b"*%d\r\n$5\r\nLPUSH\r\n%s%s" % (len(chunk) + 2, head, b"".join(parts))
        for key, ttl_s, record, ids in self.records:
            hkey, rest = _bulk(key.encode()), b"\r\n" + _bulk(record.encode())
            nx = b"*4\r\n$6\r\nHSETNX\r\n" + hkey
            for start in range(0, len(ids), MULTI_CHUNK_JOBS):
                part = [i.encode() for i in ids[start : start + MULTI_CHUNK_JOBS]]
                fields = b"".join(b"%s$%d\r\n%s%s" % (nx if self.records_may_exist else b"",
                                                        len(i), i, rest) for i in part)
                yield fields if self.records_may_exist else \
                    b"*%d\r\n$4\r\nHSET\r\n%s%s" % (2 * len(part) + 2, hkey, fields)
            yield _command(b"EXPIRE", key.encode(), b"%d" % ttl_s)
        if self.wake is not None:
            yield _command(b"ZADD", self.wake.encode(), b"0",
                           names.WAKE_MEMBER.encode()) + _EXEC
        else:
            yield _EXEC

    def multi_replies(self) -> int:
        """How many replies :meth:`multi_commands` gets: MULTI, one per command, EXEC."""
        assert self.lists is not None
        pushes = sum(-(-len(jobs) // MULTI_CHUNK_JOBS) for _, jobs in self.lists)
        chunks = sum(len(ids) if self.records_may_exist else -(-len(ids) // MULTI_CHUNK_JOBS)
                     for *_, ids in self.records)  # HSETNX a job or HSET a chunk
        records = chunks + len(self.records)  # and an EXPIRE per hash
        return 2 + self.backlog_keys + pushes + records + (self.wake is not None)

    def multi_backlog(self, replies: list[Any]) -> int:
        """Jobs that were waiting before the push, from the replies to
        :meth:`multi_commands` (an error reply given as its exception).

        Raises:
            redis.exceptions.ResponseError: the first error, as redis-py's
                pipeline would: a command refused while queueing (the EXEC
                then aborted and nothing was written), else one failed in EXEC.
        """
        *queueing, executed = replies
        for reply in queueing:
            if isinstance(reply, Exception):
                raise reply
        if isinstance(executed, Exception):
            raise executed
        for reply in executed:
            if isinstance(reply, Exception):
                raise reply
        return sum(executed[: self.backlog_keys])

    def result_ids(self, unique_ids: list[str]) -> list[str]:
        """The ids to hand back: a duplicate unique job gets the first job's id."""
        if not self.unique_jobs:
            return self.ids
        out = list(self.ids)
        for index, owner in zip(self.unique_jobs, unique_ids, strict=False):
            out[index] = owner
        return out


class _Frames(dict[int, bytes]):
    """RESP bulk-string headers (``$<len>\\r\\n``) by length, made once each."""

    def __missing__(self, length: int) -> bytes:
        frame = self[length] = b"$%d\r\n" % length
        return frame


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _command(name: bytes, *args: bytes) -> bytes:
    return b"*%d\r\n%s%s" % (len(args) + 1, _bulk(name), b"".join(map(_bulk, args)))


class PlanBuilder:
    """Accumulates operations for one call of the push script."""

    def __init__(self, layout: QueueLayout, max_backlog: int | None) -> None:
        self._layout = layout
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._ops: list[Arg] = []
        self._last: tuple[str, str, str] | None = None  # (op, key, tenant) of the open op
        self._count_at = 0  # position in _ops of the open op's count
        self._unique_jobs: list[int] = []
        self._guarded = False
        self._lists: list[tuple[str, list[bytes]]] | None = []
        self._records: list[Arg] = []  # S operations, written after the pushes
        self._starts: list[tuple[str, int, str, list[str]]] = []  # the same, for MULTI
        fair = layout.spec.fair
        if not fair and max_backlog:
            for level in layout.routes.ready:
                for key in level:
                    self._key(key)
        registry = self._key(layout.tenants) if fair else 0
        self._nb = 0 if fair else len(self._keys)
        prefix = layout.routes.tenant_prefix if fair and max_backlog else ""
        self._head: list[Arg] = [max_backlog or 0, 0 if fair else len(self._keys), prefix,
                                 registry, 0]

    def _key(self, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            self._keys.append(key)
            index = self._index[key] = len(self._keys)
        return index

    def push(self, key: str, jobs: list[bytes]) -> None:
        """LPUSH ``jobs`` (in order) onto a ready list."""
        if self._lists is not None:
            if self._last == ("L", key, ""):
                self._lists[-1][1].extend(jobs)
            else:
                self._lists.append((key, list(jobs)))
        self._extend("L", key, "", jobs)

    def push_tenant(self, tenant: str, jobs: list[bytes]) -> None:
        """LPUSH ``jobs`` onto a fair queue's tenant list and register the tenant."""
        self._lists = None
        self._extend("T", self._layout.routes.tenant_list(tenant), tenant, jobs)

    def delay(self, run_at_ms: int, jobs: list[bytes]) -> None:
        """ZADD ``jobs`` to the delayed set, scored by ``run_at_ms``."""
        self._lists = None
        pairs: list[Arg] = []
        for job in jobs:
            pairs += (run_at_ms, job)
        self._extend("Z", self._layout.delayed, "", pairs, len(jobs))

    def unique(self, idempotency_key: str, ttl_s: int, job_id: str, job_index: int) -> None:
        """Guard the next operation (one job) by a unique window."""
        self._lists = None
        self._ops += ("U", self._key(self._layout.unique(idempotency_key)), ttl_s, job_id)
        self._unique_jobs.append(job_index)
        self._last = None  # the guarded job gets an operation of its own ...
        self._guarded = True  # ... and nothing may join it later

    def track(self, ids: list[str], record: str) -> None:
        """Start a state record for each job (queues with ``track_status``): ``record``
        is the whole new record (:func:`jobpipe.jobstatus.new_record`): one ``S``
        per state hash the ids fall in (one, but at a 256 ms boundary)."""
        spec = self._layout.spec
        ttl_s = record_ttl_s(spec)
        for key, part in by_state_hash(self._layout.namespace, spec.name, ids).items():
            self._records += ("S", self._key(key), ttl_s, record, len(part), *part)
            self._starts.append((key, ttl_s, record, part))

    def seal(self) -> None:
        """Close the open operation: the next job starts a new one."""
        self._last = None

    def _extend(self, op: str, key: str, tenant: str, items: list[Arg] | list[bytes],
                count: int | None = None) -> None:
        n = len(items) if count is None else count
        if self._last == (op, key, tenant):
            self._ops[self._count_at] = int(self._ops[self._count_at]) + n
            self._ops += items
            return
        self._ops += (op, self._key(key))
        self._count_at = len(self._ops)
        self._ops.append(n)
        if op == "T":
            self._ops.append(tenant)
        self._ops += items
        self._last = None if self._guarded else (op, key, tenant)
        self._guarded = False

    def build(self, ids: list[str], wake_bridges: bool = True) -> PushPlan:
        """The finished call; its last operation wakes the queue's idle bridges
        (unless ``wake_bridges`` is false: a call of state records alone)."""
        wake = self._layout.wake if wake_bridges else None
        self._ops += self._records
        if self._ops and wake is not None:
            self._ops += ("W", self._key(wake))
        return PushPlan(self._layout.spec.name, self._keys, self._head + self._ops, ids,
                        self._unique_jobs, self._lists, self._nb, wake, self._starts)


class SlotsBuilder:
    """The call of a queue with ``shard_slots``, as one :class:`PlanBuilder` per
    shard written (each touches its shard's hash slot only) plus one for the
    state records, which stay under the queue's tag (a record is found by job id
    alone). The high-water mark is not in any part: no script may count lists
    of several slots, so the producer reads :attr:`PushPlan.backlog_lists` first.
    """

    def __init__(self, layouts: list[QueueLayout], records: QueueLayout,
                 max_backlog: int | None) -> None:
        self._layouts = layouts
        self._parts: dict[int, tuple[PlanBuilder, list[str]]] = {}
        self._records = PlanBuilder(records, None)
        self._tracked = False
        self._queue = records.spec.name
        self._backlog_lists = ([key for level in records.routes.ready for key in level]
                               if max_backlog else [])

    def part(self, shard: int, ids: list[str]) -> PlanBuilder:
        """The builder of shard ``shard``'s call, which the jobs ``ids`` join."""
        part = self._parts.get(shard)
        if part is None:
            part = self._parts[shard] = (PlanBuilder(self._layouts[shard], None), [])
        part[1].extend(ids)
        return part[0]

    def track(self, ids: list[str], record: str) -> None:
        """As :meth:`PlanBuilder.track`, in the records' own call."""
        self._tracked = self._tracked or bool(ids)
        self._records.track(ids, record)

    def build(self, ids: list[str]) -> PushPlan:
        """The parts in order: the state records first (so a job in Redis has
        its record), then the shards in ascending order."""
        parts = [self._records.build([], wake_bridges=False)] if self._tracked else []
        parts += [builder.build(part_ids) for _, (builder, part_ids) in sorted(self._parts.items())]
        uniques = [index for part in parts for index in part.unique_jobs]
        return PushPlan(self._queue, [], [], ids, uniques, None, parts=parts,
                        backlog_lists=self._backlog_lists)

"""Where jobs go, and the one script call that puts them there (sans-I/O).

A :class:`QueueLayout` holds a queue's key names (from :mod:`jobpipe.names`);
a :class:`PlanBuilder` turns placed jobs into the ``KEYS``/``ARGV`` of
:data:`ingest.scripts.PUSH_LUA`, merging consecutive jobs bound for the same
list into one variadic push so order within a list is the order given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobpipe import names
from jobpipe.topology import QueueSpec

Arg = bytes | str | int
HEADER_ARGS = 4  # max_backlog, nb, tenant prefix, registry index


@dataclass(frozen=True, slots=True)
class QueueLayout:
    """The Redis keys of one queue.

    Attributes:
        spec: the queue.
        ready: ``ready[level][shard]`` list keys.
        delayed: the delayed ZSET.
        tenants: the fair queue's tenant registry.
        tenant_prefix: a tenant list key without the tenant name.
    """

    spec: QueueSpec
    namespace: str
    ready: tuple[tuple[str, ...], ...]
    delayed: str
    tenants: str
    tenant_prefix: str

    @classmethod
    def of(cls, namespace: str, spec: QueueSpec) -> QueueLayout:
        """Build the layout of ``spec`` in ``namespace``."""
        ready = tuple(tuple(names.ready_key(namespace, spec.name, shard, level)
                            for shard in range(spec.shards)) for level in spec.levels)
        return cls(spec, namespace, ready, names.delayed_key(namespace, spec.name),
                   names.tenants_key(namespace, spec.name),
                   names.tenant_ready_key(namespace, spec.name, ""))

    def tenant_list(self, tenant: str) -> str:
        """The ready list of one tenant of a fair queue."""
        return names.tenant_ready_key(self.namespace, self.spec.name, tenant)

    def unique(self, idempotency_key: str) -> str:
        """The unique-job window key of an idempotency key."""
        return names.unique_key(self.namespace, self.spec.name, idempotency_key)


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
    """

    queue: str
    keys: list[str]
    args: list[Arg]
    ids: list[str]
    unique_jobs: list[int] = field(default_factory=list)
    lists: list[tuple[str, list[bytes]]] | None = None
    backlog_keys: int = 0

    def gate(self) -> tuple[list[str], list[Arg]]:
        """``KEYS``/``ARGV`` of a script call that only checks the high-water mark."""
        return self.keys[: self.backlog_keys], self.args[:HEADER_ARGS]

    def queue_multi(self, pipe: Any) -> None:
        """Queue this plan of plain pushes on a MULTI pipeline (sync or asyncio:
        queueing is the same call on both): backlog LLENs first, then the LPUSHes."""
        assert self.lists is not None
        for key in self.keys[: self.backlog_keys]:
            pipe.llen(key)
        for key, jobs in self.lists:
            pipe.lpush(key, *jobs)

    def multi_backlog(self, replies: list[int]) -> int:
        """Jobs that were waiting before the push, from :meth:`queue_multi`'s replies."""
        return sum(replies[: self.backlog_keys])

    def result_ids(self, unique_ids: list[str]) -> list[str]:
        """The ids to hand back: a duplicate unique job gets the first job's id."""
        if not self.unique_jobs:
            return self.ids
        out = list(self.ids)
        for index, owner in zip(self.unique_jobs, unique_ids, strict=False):
            out[index] = owner
        return out


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
        fair = layout.spec.fair
        if not fair and max_backlog:
            for level in layout.ready:
                for key in level:
                    self._key(key)
        registry = self._key(layout.tenants) if fair else 0
        self._nb = 0 if fair else len(self._keys)
        self._head: list[Arg] = [max_backlog or 0, 0 if fair else len(self._keys),
                                 layout.tenant_prefix if fair and max_backlog else "", registry]

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
        self._extend("T", self._layout.tenant_list(tenant), tenant, jobs)

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

    def build(self, ids: list[str]) -> PushPlan:
        """The finished call."""
        return PushPlan(self._layout.spec.name, self._keys, self._head + self._ops, ids,
                        self._unique_jobs, self._lists, self._nb)

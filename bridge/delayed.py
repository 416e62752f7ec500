"""Promotion of due delayed jobs from the delayed ZSET to the ready lists.

Producers ``ZADD names.delayed_key <run_at ms> <envelope>``. Every
``bridge.delayed_interval_s`` the bridge reads up to ``limit`` due members
(one round trip; nothing more when none is due), picks each one's destination
in Python by the rule producers follow (:mod:`jobpipe.routing`), and moves
them in one script that pushes a member only if its ``ZREM`` removed it. Two
bridges promoting the same queue therefore never push a job twice, and a job
leaves the ZSET only in the step that puts it on a ready list. (The crc32 shard
choice stays in Python so it matches ingest bit for bit; Lua has no crc32.)
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import redis

from jobpipe import names
from jobpipe.routing import Routes
from jobpipe.topology import QueueSpec

# KEYS: delayed, tenants, destinations... ; ARGV: (dest index, member, tenant) triples
_PROMOTE = """#!lua flags=allow-oom
local moved = 0
for i = 1, #ARGV, 3 do
  if redis.call('ZREM', KEYS[1], ARGV[i + 1]) == 1 then
    redis.call('LPUSH', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
    if ARGV[i + 2] ~= '' then redis.call('SADD', KEYS[2], ARGV[i + 2]) end
    moved = moved + 1
  end
end
return moved
"""


@dataclass(frozen=True, slots=True)
class Promotion:
    """What one promotion pass did.

    Attributes:
        moved: jobs moved to ready lists by this bridge.
        max_lateness_ms: how late the most overdue of them was.
    """

    moved: int
    max_lateness_ms: int


class Promoter:
    """Moves due delayed jobs of some queues to their ready lists."""

    def __init__(self, client: redis.Redis[bytes], ns: str, specs: list[QueueSpec],
                 limit: int = 1000) -> None:
        self._client = client
        self._ns = ns
        self._specs = specs
        self._routes = {spec.name: Routes.of(ns, spec) for spec in specs}
        self._limit = limit
        self._spread = itertools.count()
        self._script = client.register_script(_PROMOTE)

    def destination(self, spec: QueueSpec, raw: bytes) -> tuple[str, str]:
        """The list a promoted job goes to, and its tenant ('' unless fair)."""
        return self._routes[spec.name].of_raw(raw, next(self._spread))

    def promote(self, now_ms: int | None = None) -> dict[str, Promotion]:
        """One pass over every queue; returns what moved, per queue."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        pipe = self._client.pipeline(transaction=False)
        for spec in self._specs:
            pipe.zrangebyscore(names.delayed_key(self._ns, spec.name), "-inf", now_ms,
                               start=0, num=self._limit, withscores=True)
        out: dict[str, Promotion] = {}
        for spec, due in zip(self._specs, pipe.execute(), strict=True):
            if due:
                out[spec.name] = self._move(spec, due, now_ms)
        return out

    def _move(self, spec: QueueSpec, due: list[tuple[bytes, float]], now_ms: int) -> Promotion:
        dests: dict[str, int] = {}
        args: list[bytes | str | int] = []
        for member, _score in due:
            dest, tenant = self.destination(spec, member)
            index = dests.setdefault(dest, len(dests) + 3)
            args += [index, member, tenant]
        keys = [names.delayed_key(self._ns, spec.name), names.tenants_key(self._ns, spec.name),
                *dests]
        moved = int(self._script(keys=keys, args=args))
        lateness = max(0, now_ms - int(min(score for _m, score in due)))
        return Promotion(moved, lateness)

    def due_count(self, now_ms: int | None = None) -> int:
        """Jobs due now across the queues (for idleness checks)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        pipe = self._client.pipeline(transaction=False)
        for spec in self._specs:
            pipe.zcount(names.delayed_key(self._ns, spec.name), "-inf", now_ms)
        return sum(int(n) for n in pipe.execute())

"""Promotion of due delayed jobs from the delayed ZSET to the ready lists.

Producers ``ZADD names.delayed_key <run_at ms> <envelope>``. Every
``bridge.delayed_interval_s`` the bridge reads up to ``limit`` due members
(one round trip; nothing more when none is due), picks each one's destination
in Python by the rule producers follow (:mod:`jobpipe.routing`), and moves
them in one script that pushes a member only if its ``ZREM`` removed it. Two
bridges promoting the same queue therefore never push a job twice, and a job
leaves the ZSET only in the step that puts it on a ready list. (The crc32 shard
choice stays in Python so it matches ingest bit for bit; Lua has no crc32.)

A queue with ``shard_slots`` has a delayed set per shard, under the shard's
hash tag: the producer chose the shard, and a job is promoted to that shard's
ready list of its level, so each move stays in one slot.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import redis

from jobpipe import names
from jobpipe.routing import Routes
from jobpipe.topology import QueueSpec

# KEYS: delayed, destinations..., then tenants (fair queues)
# ARGV: (dest index, member, tenant) triples
_PROMOTE = """#!lua flags=allow-oom
local moved = 0
for i = 1, #ARGV, 3 do
  if redis.call('ZREM', KEYS[1], ARGV[i + 1]) == 1 then
    redis.call('LPUSH', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
    if ARGV[i + 2] ~= '' then redis.call('SADD', KEYS[#KEYS], ARGV[i + 2]) end
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

    def destination(self, spec: QueueSpec, raw: bytes,
                    slot: int | None = None) -> tuple[str, str]:
        """The list a promoted job goes to, and its tenant ('' unless fair);
        ``slot``: the shard whose delayed set held it (``shard_slots``)."""
        return self._routes[spec.name].of_raw(raw, next(self._spread), shard=slot)

    def promote(self, now_ms: int | None = None) -> dict[str, Promotion]:
        """One pass over every queue; returns what moved, per queue."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        sets = [(spec, slot) for spec in self._specs for slot in spec.slots]
        pipe = self._client.pipeline(transaction=False)
        for spec, slot in sets:
            pipe.zrangebyscore(names.delayed_key(self._ns, spec.name, slot), "-inf", now_ms,
                               start=0, num=self._limit, withscores=True)
        out: dict[str, Promotion] = {}
        for (spec, slot), due in zip(sets, pipe.execute(), strict=True):
            if due:
                done = self._move(spec, slot, due, now_ms)
                before = out.get(spec.name)
                out[spec.name] = done if before is None else Promotion(
                    before.moved + done.moved, max(before.max_lateness_ms, done.max_lateness_ms))
        return out

    def _move(self, spec: QueueSpec, slot: int | None, due: list[tuple[bytes, float]],
              now_ms: int) -> Promotion:
        dests: dict[str, int] = {}
        args: list[bytes | str | int] = []
        for member, _score in due:
            dest, tenant = self.destination(spec, member, slot)
            index = dests.setdefault(dest, len(dests) + 2)
            args += [index, member, tenant]
        keys = [names.delayed_key(self._ns, spec.name, slot), *dests]
        if spec.fair:
            keys.append(names.tenants_key(self._ns, spec.name))
        moved = int(self._script(keys=keys, args=args))
        lateness = max(0, now_ms - int(min(score for _m, score in due)))
        return Promotion(moved, lateness)

    def due_count(self, now_ms: int | None = None) -> int:
        """Jobs due now across the queues (for idleness checks)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        pipe = self._client.pipeline(transaction=False)
        for spec in self._specs:
            for slot in spec.slots:
                pipe.zcount(names.delayed_key(self._ns, spec.name, slot), "-inf", now_ms)
        return sum(int(n) for n in pipe.execute())

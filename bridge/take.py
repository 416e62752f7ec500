"""Reliable take and acknowledgement: Redis Lua, one round trip each.

A batch moves atomically from a ready list to this bridge's in-flight list for
that ready list (one in-flight list per (bridge, ready list), so recovery
returns every job to exactly the list it came from, keeping keyed jobs on
their shard and priority level). It leaves the in-flight list only when Kafka
acknowledged every job in it (or the job went to the dead list, in the same
script). Batches are acknowledged oldest first; see :mod:`bridge.batch`.

Fencing: both scripts first check that this bridge id is still in the queue's
owners set. A reaper removes a lapsed bridge from that set in the same script
that returns its in-flight list (:mod:`bridge.reaper`), and bridge ids are
never reused, so a bridge presumed dead can never trim (and so lose) jobs that
another bridge has since put back or taken: its scripts answer "fenced", and
it drops its outstanding batches (the reaper already returned them; what it
produced meanwhile becomes duplicates, never losses).

Every bridge script is flagged ``allow-oom`` (Redis >= 7): a Redis at
``maxmemory`` under noeviction refuses growing writes, but the bridge only
moves jobs out of Redis, and it must keep doing so for the backlog to drain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from bridge.batch import Source
from jobpipe.pipelined import queue_script

# KEYS: ready, inflight, owners, index, tenants ; ARGV: bridge id, n, tenant ('' = none)
_TAKE = """#!lua flags=allow-oom
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return false end
local items = redis.call('RPOP', KEYS[1], tonumber(ARGV[2]))
if not items then
  if ARGV[3] ~= '' then redis.call('SREM', KEYS[5], ARGV[3]) end
  return {}
end
redis.call('LPUSH', KEYS[2], unpack(items))
redis.call('SADD', KEYS[4], KEYS[2])
if ARGV[3] ~= '' and redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[5], ARGV[3])
end
return items
"""

# KEYS: inflight, owners, dead ; ARGV: bridge id, n, dead records...
_ACK = """#!lua flags=allow-oom
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return -1 end
for i = 3, #ARGV, 1000 do
  redis.call('LPUSH', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('LTRIM', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
return 1
"""


class Fenced(Exception):
    """This bridge id was presumed dead and its in-flight lists were returned."""


class Taker:
    """The take and ack scripts, bound to one client and one bridge id."""

    def __init__(self, client: redis.Redis[bytes], bridge_id: str,
                 owners_key: dict[str, str], index_key: dict[str, str],
                 tenants_key: dict[str, str], dead_key: dict[str, str]) -> None:
        self._client = client
        self.bridge_id = bridge_id
        self._owners = owners_key
        self._index = index_key
        self._tenants = tenants_key
        self._dead = dead_key
        self._take = client.register_script(_TAKE)
        self._ack = client.register_script(_ACK)

    def take(self, source: Source, n: int) -> list[bytes]:
        """Move up to ``n`` jobs (oldest first) from ``source`` to its in-flight list.

        Raises:
            Fenced: this bridge id lost its ownership.
        """
        q = source.queue
        items = self._take(keys=[source.key, source.inflight, self._owners[q], self._index[q],
                                 self._tenants[q]],
                           args=[self.bridge_id, n, source.tenant or ""])
        if items is None:
            raise Fenced(self.bridge_id)
        return list(items)

    def ack(self, acks: Sequence[tuple[Source, int, Sequence[bytes]]]) -> None:
        """Remove the ``n`` oldest in-flight jobs of each ``(source, n, dead_records)``,
        pushing ``dead_records`` to the dead list in the same script.

        One ack (the usual case at a low rate) is one ``EVALSHA``; several share
        a pipeline (which first asks ``SCRIPT EXISTS``, a second round trip).

        Raises:
            Fenced: this bridge id lost its ownership.
        """
        if len(acks) == 1:
            source, n, dead_records = acks[0]
            results: list[Any] = [self._ack(keys=self._ack_keys(source),
                                            args=[self.bridge_id, n, *dead_records])]
        else:
            pipe = self._client.pipeline(transaction=False)
            for source, n, dead_records in acks:
                queue_script(pipe, self._ack, self._ack_keys(source),
                             [self.bridge_id, n, *dead_records])
            results = pipe.execute()
        if any(r == -1 for r in results):
            raise Fenced("ack refused")

    def _ack_keys(self, source: Source) -> list[str]:
        q = source.queue
        return [source.inflight, self._owners[q], self._dead[q]]

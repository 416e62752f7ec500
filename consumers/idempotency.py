"""Done markers: a completed job's idempotency key, so a redelivery is skipped.

Markers are checked with one ``MGET`` per batch before running (over a
connection of its own, :mod:`jobpipe.direct_read`: every job waits for it) and
written in one pipeline per batch after success (a Lua call per queue setting
every key with the queue's TTL; keys of one queue share a hash tag, so this
holds on Redis Cluster too). A queue with ``idempotency_ttl_s <= 0`` keeps no markers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio

from jobpipe import names
from jobpipe.direct_read import DirectReads
from jobpipe.pipelined import run_script_calls_async

_MARK = """
local ttl = ARGV[1]
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ttl)
end
return #KEYS
"""


def _keys(ns: str, queue: str, keys: Sequence[str]) -> list[bytes]:
    """Marker keys as bytes: redis-py packs bytes at half the cost of str, and a
    batch holds one key per job."""
    prefix = names.done_key(ns, queue, "")
    return [(prefix + k).encode() for k in keys]


class DoneMarkers:
    """Reads and writes done markers in one namespace.

    Args:
        client: an asyncio Redis client.
        namespace: key namespace.
    """

    def __init__(self, client: redis.asyncio.Redis[bytes], namespace: str) -> None:
        self._client = client
        self._ns = namespace
        self._mark = client.register_script(_MARK)
        self._reads = DirectReads(client)

    async def seen(self, queue: str, keys: Sequence[str]) -> list[bool]:
        """Which of ``keys`` (idempotency keys of ``queue``) are already done."""
        if not keys:
            return []
        values = await self._reads.mget(_keys(self._ns, queue, keys))
        return [v is not None for v in values]

    async def mark(self, by_queue: Iterable[tuple[str, int, Sequence[str]]]) -> None:
        """Mark keys done: ``(queue, ttl_s, keys)`` triples, one round trip in all.

        One script call per queue (:func:`jobpipe.pipelined.run_script_calls_async`).
        """
        ns = self._ns
        calls = [(_keys(ns, queue, keys), [ttl_s]) for queue, ttl_s, keys in by_queue
                 if ttl_s > 0 and keys]
        if calls:
            await run_script_calls_async(self._client, self._mark, calls)

"""Done markers: a completed job's idempotency key, so a redelivery is skipped.

A job keyed by its id (no ``idem``) has its marker in a hash shared with the
jobs made in the same 256 ms (:func:`jobpipe.names.done_ids_key`, the field is
the id), like the state records: a batch's markers are one ``HSET`` and one
``EXPIRE``, refreshed by every write, so each marker lives at least the queue's
``idempotency_ttl_s`` after its own write. With one ``SET ... EX`` per job,
as before, Redis used 13-14 µs of CPU per job at saturation, 9 with the hash
(docs/benchmarks.md, "Done markers per hash"). A job with an explicit idempotency key
shares it with other ids, made at any time: it keeps a key of its own
(:func:`jobpipe.names.done_key`).

Markers are checked with one round trip per batch before running (every job
waits for it) and written in one round trip per batch after success (a Lua call
per queue; keys of one queue share a hash tag, so this holds on Redis Cluster
too), both over a connection of their own (:mod:`jobpipe.direct_calls`). A queue with
``idempotency_ttl_s <= 0`` keeps no markers.

A queue that tracks status writes a "succeeded" record for every job that
succeeds, next to its marker and for at least as long when ``record_ttl_s``
reaches ``idempotency_ttl_s``: there the record is the marker
(:func:`records_are_markers`), read with the batch's records at admission (which
also tell its cancel requests), and a job keyed by its id writes no marker of
its own. Tracking then costs the marker's write less (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

import redis.asyncio

from jobpipe import names
from jobpipe.direct_calls import Command, DirectCalls
from jobpipe.envelope import Job
from jobpipe.jobstatus import generation, record_ttl_s, succeeded_in
from jobpipe.pipelined import run_script_calls_async
from jobpipe.topology import QueueSpec

# KEYS: the id hashes, then the explicit keys. ARGV: ttl, the number of id
# hashes, then for each hash its field count and fields (ids).
_MARK = """
local ttl, hashes, at = ARGV[1], tonumber(ARGV[2]), 3
for h = 1, hashes do
  local n, fields = tonumber(ARGV[at]), {}
  for j = at + 1, at + n do
    fields[#fields + 1] = ARGV[j]
    fields[#fields + 1] = '1'
  end
  redis.call('HSET', KEYS[h], unpack(fields))
  redis.call('EXPIRE', KEYS[h], ttl)
  at = at + n + 1
end
for k = hashes + 1, #KEYS do
  redis.call('SET', KEYS[k], '1', 'EX', ttl)
end
return #KEYS
"""
# Ids per HSET: Lua's unpack() is limited by the C stack (8000 slots), two per id.
_HSET_IDS = 2000


def records_are_markers(spec: QueueSpec) -> bool:
    """Whether ``spec``'s state records stand in for the done markers of its jobs
    keyed by id: each success writes one, kept at least as long as a marker."""
    return (spec.track_status and spec.idempotency_ttl_s > 0
            and record_ttl_s(spec) >= spec.idempotency_ttl_s)


def _explicit_keys(ns: str, queue: str, idems: Iterable[str]) -> list[bytes]:
    """The marker keys of explicit idempotency keys, as bytes: redis-py packs
    bytes at half the cost of str."""
    prefix = names.done_key(ns, queue, "")
    return [(prefix + idem).encode() for idem in idems]


def _explicit(jobs: Iterable[Job]) -> list[str]:
    """The explicit idempotency keys of ``jobs``, in order."""
    return [job.idem for job in jobs if job.idem is not None]


def _by_id_hash(ns: str, queue: str, job_ids: Iterable[str]) -> dict[str, list[str]]:
    return names.by_id_hash(job_ids, partial(names.done_ids_key, ns, queue))


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
        self._direct = DirectCalls(client)

    async def seen(self, spec: QueueSpec, jobs: Sequence[Job],
                   records: Sequence[bytes | None] | None = None) -> list[bool]:
        """Which of ``jobs`` (of queue ``spec``) are already done.

        Args:
            records: the jobs' state records, in order, where the queue tracks
                status (``consumers.states.JobStates.records``).
        """
        if not jobs or spec.idempotency_ttl_s <= 0:
            return [False] * len(jobs)
        done = [False] * len(jobs)
        by_marker: list[int] = []
        if records is not None and records_are_markers(spec):
            for i, (job, record) in enumerate(zip(jobs, records, strict=True)):
                if job.idem is not None:
                    by_marker.append(i)
                else:
                    done[i] = succeeded_in(record, generation(job.meta))
        else:
            by_marker = list(range(len(jobs)))
        if by_marker:
            done_ids = await self._done_ids(spec.name, [jobs[i] for i in by_marker])
            for i in by_marker:
                done[i] = jobs[i].idempotency_key in done_ids
        return done

    async def _done_ids(self, queue: str, jobs: Sequence[Job]) -> set[str]:
        """The idempotency keys of ``jobs`` that have a marker, read in one round trip."""
        groups = _by_id_hash(self._ns, queue, [job.id for job in jobs if job.idem is None])
        commands: list[Command] = [("HMGET", key, *ids) for key, ids in groups.items()]
        keyed = list(groups.values())
        explicit = _explicit(jobs)
        if explicit:
            commands.append(("MGET", *_explicit_keys(self._ns, queue, explicit)))
            keyed.append(explicit)
        replies = await self._direct.execute(commands)
        done: set[str] = set()
        for keys, values in zip(keyed, replies, strict=True):
            done.update(key for key, value in zip(keys, values, strict=True) if value is not None)
        return done

    async def mark(self, by_queue: Iterable[tuple[QueueSpec, Sequence[Job]]]) -> None:
        """Mark ``jobs`` done: ``(queue, jobs)`` pairs, one round trip in all; jobs
        whose state record says so already (:func:`records_are_markers`) are left out.

        One script call per queue (:func:`jobpipe.pipelined.run_script_calls_async`),
        over the connection the markers are read on.
        """
        ns = self._ns
        calls = []
        for spec, jobs in by_queue:
            if spec.idempotency_ttl_s <= 0:
                continue
            keyed_by_id = [] if records_are_markers(spec) else [
                job.id for job in jobs if job.idem is None]
            keys: list[str | bytes] = []
            args: list[str | int] = [spec.idempotency_ttl_s, 0]
            for key, ids in _by_id_hash(ns, spec.name, keyed_by_id).items():
                for at in range(0, len(ids), _HSET_IDS):
                    part = ids[at:at + _HSET_IDS]
                    keys.append(key)
                    args += (len(part), *part)
            args[1] = len(keys)
            keys += _explicit_keys(ns, spec.name, _explicit(jobs))
            if keys:
                calls.append((keys, args))
        if calls:
            # Over the read's connection: a mark run twice sets what it set.
            await run_script_calls_async(self._client, self._mark, calls, self._direct)

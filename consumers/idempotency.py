"""Done markers: a completed job's idempotency key, so a redelivery is skipped.

Markers are checked with one round trip per batch before running (over a
connection of its own, :mod:`jobpipe.direct_read`: every job waits for it) and
written in one pipeline per batch after success (a Lua call per queue setting
every key with the queue's TTL; keys of one queue share a hash tag, so this
holds on Redis Cluster too). A queue with ``idempotency_ttl_s <= 0`` keeps no markers.

A queue that tracks status writes a "succeeded" record for every job that
succeeds, next to its marker and for at least as long when ``record_ttl_s``
reaches ``idempotency_ttl_s``: there the record is the marker
(:func:`records_are_markers`), read with the batch's records at admission (which
also tell its cancel requests), and a job keyed by its id writes no marker of
its own. Tracking then costs the marker's
key, expiry and write less (docs/operations.md). A job with an explicit
idempotency key (``idem``) shares it with other ids: it keeps its marker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio

from jobpipe import names
from jobpipe.direct_read import DirectReads
from jobpipe.envelope import Job
from jobpipe.jobstatus import generation, record_ttl_s, succeeded_in
from jobpipe.pipelined import run_script_calls_async
from jobpipe.topology import QueueSpec

_MARK = """
local ttl = ARGV[1]
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ttl)
end
return #KEYS
"""


def records_are_markers(spec: QueueSpec) -> bool:
    """Whether ``spec``'s state records stand in for the done markers of its jobs
    keyed by id: each success writes one, kept at least as long as a marker."""
    return (spec.track_status and spec.idempotency_ttl_s > 0
            and record_ttl_s(spec) >= spec.idempotency_ttl_s)


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
            values = await self._reads.mget(
                _keys(self._ns, spec.name, [jobs[i].idempotency_key for i in by_marker]))
            for i, value in zip(by_marker, values, strict=True):
                done[i] = value is not None
        return done

    async def mark(self, by_queue: Iterable[tuple[QueueSpec, Sequence[Job]]]) -> None:
        """Mark ``jobs`` done: ``(queue, jobs)`` pairs, one round trip in all; jobs
        whose state record says so already (:func:`records_are_markers`) are left out.

        One script call per queue (:func:`jobpipe.pipelined.run_script_calls_async`).
        """
        ns = self._ns
        calls = []
        for spec, jobs in by_queue:
            if spec.idempotency_ttl_s <= 0:
                continue
            records = records_are_markers(spec)
            keys = [job.idempotency_key for job in jobs if not (records and job.idem is None)]
            if keys:
                calls.append((_keys(ns, spec.name, keys), [spec.idempotency_ttl_s]))
        if calls:
            await run_script_calls_async(self._client, self._mark, calls)

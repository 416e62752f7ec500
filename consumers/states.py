"""The worker's side of job status: state writes per batch, and cancel requests.

Only queues with ``track_status``. Runners note each job's start, success or
failure here; the flusher writes them all with one :data:`ADVANCE_LUA` call
per queue, in one pipeline (the record and its forward-only rule live in
:mod:`jobpipe.jobstatus`). Admission reads a batch's records (:meth:`JobStates.records`,
one ``HMGET`` per state hash over a connection of its own): they say which jobs
someone asked to cancel and, where they stand in for done markers, which are
done already. For running jobs, cancel requests are checked every
:data:`CANCEL_POLL_S` (one ``SMISMEMBER``, plus an ``HGET`` of the few ids it names).

Redis trouble here never stalls jobs or offsets: a write that fails is logged
and dropped, a check that fails reads as "not cancelled".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from consumers.redis_trouble import RedisTrouble
from jobpipe import names
from jobpipe.direct_calls import DirectCalls
from jobpipe.jobstatus import (
    ADVANCE_LUA,
    SameUpdate,
    Update,
    advance_calls,
    by_state_hash,
    cancel_asked,
)
from jobpipe.pipelined import run_script_calls_async
from jobpipe.topology import QueueSpec

CANCEL_POLL_S = 0.5  # how soon a running job hears of its cancel request


class JobStates:
    """Pending state writes and cancel checks of one worker.

    Args:
        client: an asyncio Redis client.
        namespace: key namespace.
        specs: the worker's queues (those with ``track_status`` count).
        trouble: what a failed read or write leads to (:mod:`consumers.redis_trouble`).
    """

    def __init__(self, client: Any, namespace: str, specs: Sequence[QueueSpec],
                 trouble: RedisTrouble | None = None) -> None:
        self._trouble = trouble or RedisTrouble()
        self._client = client
        self._ns = namespace
        self.tracked = {spec.name: spec for spec in specs if spec.track_status}
        self._advance = client.register_script(ADVANCE_LUA)
        self._direct = DirectCalls(client)
        self._pending: dict[str, list[Update | SameUpdate]] = {}

    def add(self, queue: str, update: Update | SameUpdate) -> None:
        """Note a state change of a tracked queue's job, for the next :meth:`flush`."""
        pending = self._pending.get(queue)
        if pending is None:
            self._pending[queue] = [update]
        else:
            pending.append(update)

    def has_pending(self) -> bool:
        """Whether state changes wait for :meth:`flush`."""
        return bool(self._pending)

    async def flush(self) -> None:
        """Write every pending change: script calls of at most
        :data:`~jobpipe.jobstatus.ADVANCE_MAX_JOBS` jobs per queue, one round trip."""
        pending, self._pending = self._pending, {}
        calls = [call for queue, updates in pending.items()
                 for call in advance_calls(self._ns, self.tracked[queue], updates)]
        try:
            if calls:
                await run_script_calls_async(self._client, self._advance, calls)
        except Exception as exc:  # a lookup is then behind; never stall the jobs
            self._trouble.note("writing job states", exc)

    async def records(self, queue: str, job_ids: Sequence[str]) -> list[bytes | None]:
        """The records of ``job_ids`` (of a tracked queue), in order (``None``: no
        record): one ``HMGET`` per state hash, in one round trip. Raises on Redis
        trouble (the caller decides what an unknown record means)."""
        by_hash = by_state_hash(self._ns, queue, job_ids)
        replies = await self._direct.execute(
            [("HMGET", key, *ids) for key, ids in by_hash.items()])
        if len(by_hash) == 1:  # the usual batch: jobs made within 256 ms
            return cast("list[bytes | None]", replies[0])
        found: dict[str, bytes | None] = {}
        for ids, reply in zip(by_hash.values(), replies, strict=True):
            found.update(zip(ids, reply, strict=True))
        return [found[job_id] for job_id in job_ids]

    async def cancel_requested(self, queue: str, job_ids: Sequence[str]) -> list[bool]:
        """Which of ``job_ids`` (of a tracked queue) someone asked to cancel.

        The queue's set of cancel requests names the candidates (one reply of
        small integers, where reading every record carried it back); only
        their records are read, as the record decides (a replay drops the
        request of an earlier generation from it)."""
        try:
            member = await self._client.smismember(
                names.cancel_requests_key(self._ns, queue), list(job_ids))
            candidates = [job_id for job_id, yes in zip(job_ids, member, strict=True) if yes]
            records = await self._read(queue, candidates) if candidates else []
        except Exception as exc:
            self._trouble.note("reading cancel requests (running the jobs)", exc)
            return [False] * len(job_ids)
        asked = {c for c, record in zip(candidates, records, strict=True) if cancel_asked(record)}
        return [job_id in asked for job_id in job_ids]

    async def _read(self, queue: str, job_ids: Sequence[str]) -> list[Any]:
        """The records of ``job_ids``, in order: one ``HGET`` each, one round trip
        (the few ids a cancel request names)."""
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(names.job_states_key(self._ns, queue, job_id), job_id)
        return list(await pipe.execute())

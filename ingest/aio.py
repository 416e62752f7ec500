"""The asyncio producer, and the source of the blocking one.

:class:`AsyncProducer` runs on any asyncio loop, uvloop included: ``await
start()`` (or ``async with``) checks Redis, ``await close()`` releases it.

``ingest/producer.py`` (:class:`ingest.Producer`) is generated from this file by
``scripts/unasync.py``: edit here, then run the script; a unit test fails while
the two differ. Both are thin shells over the sans-I/O core
(:class:`ingest.intake.Intake`), which plans, judges replies and paces retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import redis.asyncio
import redis.exceptions

from ingest import replicas
from ingest.failures import unavailable
from ingest.intake import Intake, JobRequest
from ingest.meters import IntakeMeters
from ingest.plan import PushPlan
from ingest.scripts import PUSH_LUA, PushReply, parse_reply
from ingest.spool import Spool
from jobpipe import connections, jobstatus
from jobpipe.errors import NotReplicated
from jobpipe.jobstatus import JobStatus
from jobpipe.options import JobOptions
from jobpipe.pipelined import run_script_async
from jobpipe.redact import redact_url
from jobpipe.redis_failures import REDIS_DOWN, is_out_of_memory, is_redis_down
from jobpipe.settings import Settings

log = logging.getLogger(__name__)


class AsyncProducer:
    """Hands jobs to Redis in one round trip per call.

    Checks that Redis will not drop jobs (``noeviction`` and AOF;
    :class:`~jobpipe.errors.UnsafeRedis` when ``redis.require_safe``) in
    :meth:`start`; when Redis cannot be reached yet, or ``start`` was not
    called, the check runs before the first push.

    Args:
        settings: namespace, topology, ``[redis]`` and ``[ingest]``.
        client: a Redis client to use instead of one built from settings
            (the producer then does not close it).
    """

    def __init__(self, settings: Settings, *,
                 client: redis.asyncio.Redis[bytes] | None = None) -> None:
        self.settings = settings
        self._core = Intake(settings)
        self._own_client = client is None
        self._redis = client if client is not None else connections.async_redis_client(
            settings.redis)
        self._script = self._redis.register_script(PUSH_LUA)
        path = settings.ingest.spool_path
        self._spool = Spool(path) if path else None
        self._spool_lock = asyncio.Lock()
        self._meters = IntakeMeters()
        self._checked = False
        # The blocking producer can do I/O here, so it checks Redis at construction.
        # sync-only: self.start()

    async def start(self) -> Self:
        """Check that Redis will not drop jobs (once; a Redis not reachable yet only warns).

        Raises:
            UnsafeRedis: Redis evicts keys or has no AOF (and ``require_safe``).
        """
        if not self._checked:
            try:
                await self._check()
            except REDIS_DOWN as exc:
                log.warning("Redis at %s not reachable yet (%s); checking before the first push",
                            redact_url(self.settings.redis.url), exc)
        return self

    async def _check(self) -> None:
        await connections.check_redis_safety_async(self._redis, self.settings.redis)
        self._checked = True

    # --- public API --------------------------------------------------------------

    async def enqueue(
            self, queue: str, task: str, args: Any = None, *, key: str | None = None,
            tenant: str | None = None, priority: int | None = None,
            delay_s: float | None = None, run_at: datetime | float | None = None,
            idempotency_key: str | None = None, unique_for_s: float | None = None,
            max_attempts: int | None = None) -> str:
        """Enqueue one job; returns its id (the first job's id for a unique duplicate).

        Raises:
            JobRejected: bad input (``UnknownQueue``, ``NotSerializable``,
                ``JobTooLarge``), before anything is written.
            QueueFull: past the high-water mark (after ``block_timeout_s`` when blocking).
            IntakeUnavailable: Redis did not answer by ``deadline_s`` and no spool is set.
            NotReplicated: (an ``IntakeUnavailable``) with ``redis.wait_replicas``,
                fewer replicas confirmed the jobs in time; they were written.
        """
        options = JobOptions(key, tenant, priority, delay_s, run_at, idempotency_key,
                             unique_for_s, max_attempts)
        plan = self._meters.planned(
            queue, lambda: self._core.plan_many(queue, task, (args,), options))
        ids = await self._send(plan)
        return ids[0]

    async def enqueue_many(
            self, queue: str, task: str, args_list: Sequence[Any], *, key: str | None = None,
            tenant: str | None = None, priority: int | None = None,
            delay_s: float | None = None, run_at: datetime | float | None = None,
            max_attempts: int | None = None, idempotency_key: str | None = None,
            unique_for_s: float | None = None) -> list[str]:
        """Enqueue one job per element of ``args_list``, all or nothing, in one round trip.

        Jobs with a ``key`` keep the list's order. Raises as :meth:`enqueue`.
        """
        options = JobOptions(key, tenant, priority, delay_s, run_at, idempotency_key,
                             unique_for_s, max_attempts)
        plan = self._meters.planned(
            queue, lambda: self._core.plan_many(queue, task, args_list, options))
        return await self._send(plan)

    async def enqueue_jobs(self, queue: str, requests: Sequence[JobRequest]) -> list[str]:
        """Enqueue jobs with their own task and options, all or nothing, in one round trip.

        Raises:
            InvalidJobs: naming every bad job by index; nothing was written.
        """
        plan = self._meters.planned(queue, lambda: self._core.plan_jobs(queue, requests))
        return await self._send(plan)

    async def ping(self) -> None:
        """Round trip to Redis (for health checks); raises when it does not answer."""
        await self._redis.ping()

    async def status(self, job_id: str) -> JobStatus | None:
        """Where a job is now; ``None`` when no queue with ``track_status`` knows it."""
        return await jobstatus.lookup_async(self._redis, self.settings, job_id)

    async def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Wait until a job is over; its final status (``.result``: the kept result).

        Raises:
            TimeoutError: not over within ``timeout_s``.
        """
        return await jobstatus.wait_for_async(self._redis, self.settings, job_id, timeout_s)

    async def cancel(self, job_id: str) -> JobStatus | None:
        """Ask to cancel a job; its status after (``None``: unknown id).

        A job not started yet is ``cancelled`` at once; a running one is stopped
        by its worker (``details["cancel"]`` says it was asked); one that is
        over stays as it is.
        """
        return (await jobstatus.cancel_async(self._redis, self.settings, job_id))[1]

    async def flush_spool(self) -> int:
        """Re-send spooled calls now; returns how many jobs went to Redis."""
        async with self._spool_lock:
            return await self._replay()

    async def close(self) -> None:
        """Release the connections (spooled jobs stay in the file for next time)."""
        if self._own_client:
            await self._redis.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
            self, kind: type[BaseException] | None, exc: BaseException | None,
            tb: TracebackType | None) -> None:
        await self.close()

    # --- the shell ---------------------------------------------------------------

    async def _send(self, plan: PushPlan) -> list[str]:
        if not plan.ids:
            return []
        started = time.perf_counter()
        if self._spool is not None and self._spool.pending:
            async with self._spool_lock:
                if self._spool.pending and not await self._replay_once():
                    # Keep order behind what is spooled.
                    await asyncio.to_thread(self._spool.append, plan)
                    return plan.ids
        attempts = self._core.attempts(time.monotonic())
        while True:
            try:
                reply = await self._push(plan)
            except NotReplicated:
                self._meters.rejected(plan.queue, "unreplicated")
                raise
            except REDIS_DOWN as exc:
                self._refused(exc, plan)
                plan.may_have_run()
                wait_s = attempts.after_down(time.monotonic())
                if wait_s is None:
                    return await self._give_up(plan, exc)
                await asyncio.sleep(wait_s)
                continue
            if reply.full:
                wait_s = attempts.after_full(time.monotonic())
                if wait_s is None:
                    self._meters.rejected(plan.queue, "full")
                    raise self._core.full_error(plan, reply)
                await asyncio.sleep(wait_s)
                continue
            self._meters.accepted(plan.queue, len(plan.ids), time.perf_counter() - started)
            return plan.result_ids(reply.unique_ids)

    async def _push(self, plan: PushPlan) -> PushReply:
        if plan.parts:
            return await self._push_parts(plan)
        if not self._core.use_multi(plan):
            reply = await self._call(plan.keys, plan.args)
            if not reply.full:
                self._core.observe(plan.queue, reply.backlog + len(plan.ids))
            return reply
        if self._core.must_check(plan):
            reply = await self._call(*plan.gate())
            self._core.observe(plan.queue, reply.backlog)
            if reply.full:
                return reply
        return await self._multi(plan)

    async def _push_parts(self, plan: PushPlan) -> PushReply:
        """A queue with ``shard_slots``: the high-water mark read from every ready
        list (one pipeline; no script may span slots), then one script call per
        slot, in order. A batch is so all or nothing per slot, not as a whole: a
        failure leaves the answered parts written, and the retry (or the spool)
        goes on with the next part. Concurrent producers may overshoot the mark
        by a batch each, as on the MULTI path (``Intake.must_check``)."""
        backlog = 0
        if plan.backlog_lists and not plan.sent:
            pipe = self._redis.pipeline(transaction=False)
            for key in plan.backlog_lists:
                pipe.llen(key)
            backlog = sum(await pipe.execute())
            if backlog >= (self._core.layout(plan.queue).spec.max_backlog or 0):
                return PushReply(True, backlog, [])
        for part in plan.calls():
            reply = await self._call(part.keys, part.args)
            if reply.full:  # Redis at maxmemory
                return reply
            plan.sent_uniques += reply.unique_ids
            plan.sent += 1
        return PushReply(False, backlog, plan.sent_uniques)

    async def _multi(self, plan: PushPlan) -> PushReply:
        """Plain pushes as MULTI/LPUSH/EXEC: no Lua, so no per-argument Lua strings.

        Written on one pooled connection as :meth:`PushPlan.multi_commands`
        frames them; every reply is read before any error is raised, and a
        connection that failed mid-way is dropped by redis-py (Redis discards
        the open MULTI with it, so nothing was written).
        """
        if not self._checked:
            await self._check()
        pool = self._redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(plan.multi_commands())
            replies = [await _reply(conn) for _ in range(plan.multi_replies())]
        finally:
            await pool.release(conn)
        return self._core.multi_reply(plan, replies)

    async def _call(self, keys: list[str], args: list[Any]) -> PushReply:
        if not self._checked:
            await self._check()
        if self.settings.redis.wait_replicas:
            return await self._call_confirmed(keys, args)
        try:
            return parse_reply(await run_script_async(self._redis, self._script, keys, args))
        except redis.exceptions.ResponseError as exc:
            if is_out_of_memory(exc):  # at maxmemory: Redis itself is full
                return PushReply(True, -1, [])
            raise

    async def _call_confirmed(self, keys: list[str], args: list[Any]) -> PushReply:
        """The push script, then ``WAIT``, on one connection to the keys' primary
        (:mod:`ingest.replicas`); follows MOVED and ASK."""
        target = replicas.Target(keys[0])
        for _ in range(replicas.MAX_REDIRECTS):
            batch = replicas.commands(keys, args, self.settings.redis, target)
            async with replicas.primary_connection_async(self._redis, target) as conn:
                await conn.send_packed_command(conn.pack_commands(batch))
                replies = [await _reply(conn) for _ in batch]
            outcome = replicas.judge(replies, self.settings.redis, keys[0])
            if isinstance(outcome, PushReply):
                return outcome
            if not outcome.ask:
                await replicas.refresh_slots_async(self._redis)
            target = replicas.Target(keys[0], outcome if outcome.ask else None)
        # Read as "Redis down": tried again, with a pause, until the deadline.
        raise redis.exceptions.TryAgainError(f"the slot of {keys[0]} moved "
                                             f"{replicas.MAX_REDIRECTS} times during one call")

    async def _give_up(self, plan: PushPlan, exc: BaseException) -> list[str]:
        if self._spool is None:
            self._meters.rejected(plan.queue, "unavailable")
            raise unavailable(self.settings.redis.url, self.settings.ingest.deadline_s,
                              exc) from exc
        async with self._spool_lock:
            await asyncio.to_thread(self._spool.append, plan)
        log.warning("Redis at %s unavailable; spooled %d jobs of queue %s to %s",
                    redact_url(self.settings.redis.url), len(plan.ids), plan.queue,
                    self._spool.path)
        return plan.ids

    async def _replay_once(self) -> bool:
        """Try the spool once (caller holds the lock); True when it is empty now."""
        try:
            await self._replay()
        except REDIS_DOWN as exc:
            self._refused(exc)  # refused: spooling more would hide it
            return False
        return self._spool is None or not self._spool.pending

    def _refused(self, exc: Exception, plan: PushPlan | None = None) -> None:
        """Raise when Redis refused who we are (a password rotated since the start,
        an ACL changed): it answers the same way until someone fixes it, so one
        clear line now instead of retrying until the deadline or spooling. A
        refused ``plan`` counts as rejected."""
        if not is_redis_down(exc):
            if plan is not None:
                self._meters.rejected(plan.queue, "refused")
            raise connections.redis_access_error(self.settings.redis.url, exc) from None

    async def _replay(self) -> int:
        if self._spool is None or not self._spool.pending:
            return 0
        calls = await asyncio.to_thread(self._spool.read)
        sent = jobs = 0
        try:
            for call in calls:
                reply = await self._call(call.keys, call.args)
                if reply.full:
                    break  # still spooled; tried again on the next call
                sent += 1
                jobs += call.jobs
        finally:
            await asyncio.to_thread(self._spool.keep, calls[sent:])
            if jobs:
                log.info("re-sent %d spooled jobs (%d calls) to Redis", jobs, sent)
        return jobs


async def _reply(conn: Any) -> Any:
    """One reply; an error reply is returned as its exception (the rest must be read)."""
    try:
        return await conn.read_response()
    except redis.exceptions.ResponseError as exc:
        return exc

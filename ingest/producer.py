"""The blocking producer, generated from ingest/aio.py: do not edit.

:class:`Producer` checks Redis at construction; ``close()`` (or ``with``)
releases it. Thread-safe: redis-py's client is, and the spool is guarded by a
lock. Edit ``ingest/aio.py`` and run ``python scripts/unasync.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import redis

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
from jobpipe.pipelined import run_script
from jobpipe.redact import redact_url
from jobpipe.redis_failures import REDIS_DOWN, is_out_of_memory, is_redis_down
from jobpipe.settings import Settings

log = logging.getLogger(__name__)


class Producer:
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
                 client: redis.Redis[bytes] | None = None) -> None:
        self.settings = settings
        self._core = Intake(settings)
        self._own_client = client is None
        self._redis = client if client is not None else connections.redis_client(
            settings.redis)
        self._script = self._redis.register_script(PUSH_LUA)
        path = settings.ingest.spool_path
        self._spool = Spool(path) if path else None
        self._spool_lock = threading.Lock()
        self._meters = IntakeMeters()
        self._checked = False
        # The blocking producer can do I/O here, so it checks Redis at construction.
        self.start()

    def start(self) -> Self:
        """Check that Redis will not drop jobs (once; a Redis not reachable yet only warns).

        Raises:
            UnsafeRedis: Redis evicts keys or has no AOF (and ``require_safe``).
        """
        if not self._checked:
            try:
                self._check()
            except REDIS_DOWN as exc:
                log.warning("Redis at %s not reachable yet (%s); checking before the first push",
                            redact_url(self.settings.redis.url), exc)
        return self

    def _check(self) -> None:
        connections.check_redis_safety(self._redis, self.settings.redis)
        self._checked = True

    # --- public API --------------------------------------------------------------

    def enqueue(
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
        ids = self._send(plan)
        return ids[0]

    def enqueue_many(
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
        return self._send(plan)

    def enqueue_jobs(self, queue: str, requests: Sequence[JobRequest]) -> list[str]:
        """Enqueue jobs with their own task and options, all or nothing, in one round trip.

        Raises:
            InvalidJobs: naming every bad job by index; nothing was written.
        """
        plan = self._meters.planned(queue, lambda: self._core.plan_jobs(queue, requests))
        return self._send(plan)

    def ping(self) -> None:
        """Round trip to Redis (for health checks); raises when it does not answer."""
        self._redis.ping()

    def status(self, job_id: str) -> JobStatus | None:
        """Where a job is now; ``None`` when no queue with ``track_status`` knows it."""
        return jobstatus.lookup(self._redis, self.settings, job_id)

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Wait until a job is over; its final status (``.result``: the kept result).

        Raises:
            TimeoutError: not over within ``timeout_s``.
        """
        return jobstatus.wait_for(self._redis, self.settings, job_id, timeout_s)

    def cancel(self, job_id: str) -> JobStatus | None:
        """Ask to cancel a job; its status after (``None``: unknown id).

        A job not started yet is ``cancelled`` at once; a running one is stopped
        by its worker (``details["cancel"]`` says it was asked); one that is
        over stays as it is.
        """
        return (jobstatus.cancel(self._redis, self.settings, job_id))[1]

    def flush_spool(self) -> int:
        """Re-send spooled calls now; returns how many jobs went to Redis."""
        with self._spool_lock:
            return self._replay()

    def close(self) -> None:
        """Release the connections (spooled jobs stay in the file for next time)."""
        if self._own_client:
            self._redis.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
            self, kind: type[BaseException] | None, exc: BaseException | None,
            tb: TracebackType | None) -> None:
        self.close()

    # --- the shell ---------------------------------------------------------------

    def _send(self, plan: PushPlan) -> list[str]:
        if not plan.ids:
            return []
        started = time.perf_counter()
        if self._spool is not None and self._spool.pending:
            with self._spool_lock:
                if self._spool.pending and not self._replay_once():
                    # Keep order behind what is spooled.
                    self._spool.append(plan)
                    return plan.ids
        attempts = self._core.attempts(time.monotonic())
        while True:
            try:
                reply = self._push(plan)
            except NotReplicated:
                self._meters.rejected(plan.queue, "unreplicated")
                raise
            except REDIS_DOWN as exc:
                self._refused(exc, plan)
                plan.may_have_run()
                wait_s = attempts.after_down(time.monotonic())
                if wait_s is None:
                    return self._give_up(plan, exc)
                time.sleep(wait_s)
                continue
            if reply.full:
                wait_s = attempts.after_full(time.monotonic())
                if wait_s is None:
                    self._meters.rejected(plan.queue, "full")
                    raise self._core.full_error(plan, reply)
                time.sleep(wait_s)
                continue
            self._meters.accepted(plan.queue, len(plan.ids), time.perf_counter() - started)
            return plan.result_ids(reply.unique_ids)

    def _push(self, plan: PushPlan) -> PushReply:
        if plan.parts:
            return self._push_parts(plan)
        if not self._core.use_multi(plan):
            reply = self._call(plan.keys, plan.args)
            if not reply.full:
                self._core.observe(plan.queue, reply.backlog + len(plan.ids))
            return reply
        if self._core.must_check(plan):
            reply = self._call(*plan.gate())
            self._core.observe(plan.queue, reply.backlog)
            if reply.full:
                return reply
        return self._multi(plan)

    def _push_parts(self, plan: PushPlan) -> PushReply:
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
            backlog = sum(pipe.execute())
            if backlog >= (self._core.layout(plan.queue).spec.max_backlog or 0):
                return PushReply(True, backlog, [])
        for part in plan.calls():
            reply = self._call(part.keys, part.args)
            if reply.full:  # Redis at maxmemory
                return reply
            plan.sent_uniques += reply.unique_ids
            plan.sent += 1
        return PushReply(False, backlog, plan.sent_uniques)

    def _multi(self, plan: PushPlan) -> PushReply:
        """Plain pushes as MULTI/LPUSH/EXEC: no Lua, so no per-argument Lua strings.

        Written on one pooled connection as :meth:`PushPlan.multi_commands`
        frames them; every reply is read before any error is raised, and a
        connection that failed mid-way is dropped by redis-py (Redis discards
        the open MULTI with it, so nothing was written).
        """
        if not self._checked:
            self._check()
        pool = self._redis.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command(plan.multi_commands())
            replies = [_reply(conn) for _ in range(plan.multi_replies())]
        finally:
            pool.release(conn)
        return self._core.multi_reply(plan, replies)

    def _call(self, keys: list[str], args: list[Any]) -> PushReply:
        if not self._checked:
            self._check()
        if self.settings.redis.wait_replicas:
            return self._call_confirmed(keys, args)
        try:
            return parse_reply(run_script(self._redis, self._script, keys, args))
        except redis.exceptions.ResponseError as exc:
            if is_out_of_memory(exc):  # at maxmemory: Redis itself is full
                return PushReply(True, -1, [])
            raise

    def _call_confirmed(self, keys: list[str], args: list[Any]) -> PushReply:
        """The push script, then ``WAIT``, on one connection to the keys' primary
        (:mod:`ingest.replicas`); follows MOVED and ASK."""
        target = replicas.Target(keys[0])
        for _ in range(replicas.MAX_REDIRECTS):
            batch = replicas.commands(keys, args, self.settings.redis, target)
            with replicas.primary_connection(self._redis, target) as conn:
                conn.send_packed_command(conn.pack_commands(batch))
                replies = [_reply(conn) for _ in batch]
            outcome = replicas.judge(replies, self.settings.redis, keys[0])
            if isinstance(outcome, PushReply):
                return outcome
            if not outcome.ask:
                replicas.refresh_slots(self._redis)
            target = replicas.Target(keys[0], outcome if outcome.ask else None)
        # Read as "Redis down": tried again, with a pause, until the deadline.
        raise redis.exceptions.TryAgainError(f"the slot of {keys[0]} moved "
                                             f"{replicas.MAX_REDIRECTS} times during one call")

    def _give_up(self, plan: PushPlan, exc: BaseException) -> list[str]:
        if self._spool is None:
            self._meters.rejected(plan.queue, "unavailable")
            raise unavailable(self.settings.redis.url, self.settings.ingest.deadline_s,
                              exc) from exc
        with self._spool_lock:
            self._spool.append(plan)
        log.warning("Redis at %s unavailable; spooled %d jobs of queue %s to %s",
                    redact_url(self.settings.redis.url), len(plan.ids), plan.queue,
                    self._spool.path)
        return plan.ids

    def _replay_once(self) -> bool:
        """Try the spool once (caller holds the lock); True when it is empty now."""
        try:
            self._replay()
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

    def _replay(self) -> int:
        if self._spool is None or not self._spool.pending:
            return 0
        calls = self._spool.read()
        sent = jobs = 0
        try:
            for call in calls:
                reply = self._call(call.keys, call.args)
                if reply.full:
                    break  # still spooled; tried again on the next call
                sent += 1
                jobs += call.jobs
        finally:
            self._spool.keep(calls[sent:])
            if jobs:
                log.info("re-sent %d spooled jobs (%d calls) to Redis", jobs, sent)
        return jobs


def _reply(conn: Any) -> Any:
    """One reply; an error reply is returned as its exception (the rest must be read)."""
    try:
        return conn.read_response()
    except redis.exceptions.ResponseError as exc:
        return exc

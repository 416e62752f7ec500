"""The asyncio side of one worker process: run jobs, account for them, store offsets.

Runners (``settings.worker.concurrency`` coroutines) take the next job from
the lanes and run it: async handlers on the loop, sync ones on a thread pool.
A no-op async handler completes without suspending, so one runner drains a
batch with no per-job task, lock or wake-up. Finished jobs are accounted for
in batches by the flusher, no more often than once per ``FLUSH_GAP_S``: done
markers in one pipeline, then contiguous offsets handed to the fetcher to
store. A failed job's offset completes only after its retry or DLQ record is
acknowledged by Kafka. Queues with ``track_status`` also have each job's state
written by the flusher (:mod:`consumers.states`), and their running jobs can
be cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from consumers.accounting import BatchMetrics
from consumers.context import JobContext
from consumers.followup import FollowUps
from consumers.heartbeat import worker_id
from consumers.idempotency import DoneMarkers
from consumers.lanes import Item, Lanes
from consumers.offsets import TPO, OffsetTracker
from consumers.ratelimit import RateLimiter
from consumers.redis_trouble import RedisTrouble
from consumers.retry.policy import Decision, Timeout, decide
from consumers.retry.sink import FailureSink, MessageOrigin, error_record
from consumers.states import CANCEL_POLL_S, JobStates
from jobpipe import jobstatus, metrics, tracing
from jobpipe.envelope import Job
from jobpipe.jobstatus import SameUpdate, Update
from jobpipe.topology import QueueSpec

log = logging.getLogger(__name__)
# Shortest time between two flushes of finished jobs. A flush (done markers,
# tracked states, offsets, metrics) costs about the same for one job as for
# many; while jobs trickle in, one flush per job was a third of the worker's
# CPU at 1,000 jobs/s (docs/benchmarks.md). The price: jobs finished in the
# last gap are not yet marked or committed, so a crash re-runs about
# rate x (gap + one flush) of them, and a job shorter than the gap never shows
# as running in its tracked state.
FLUSH_GAP_S = 0.005


class Slot:
    """One runner coroutine and the job it is running."""

    __slots__ = ("cancelled", "ctx", "deadline", "item", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.item: Item | None = None
        self.ctx: JobContext | None = None
        self.deadline = math.inf
        self.timed_out = False
        self.cancelled = False  # its job was asked to stop


class Runner:
    """Runs jobs from the lanes and accounts for them.

    Args:
        lanes: the job buffers.
        tracker: contiguous offsets.
        sink: retries and dead letters.
        follow_ups: producer of ``ctx.enqueue`` jobs.
        markers: done markers (``mark``), or ``None`` to keep none.
        limiter: per-queue and per-tenant rate limits (:mod:`consumers.ratelimit`),
            or ``None``.
        stats: batch metrics.
        concurrency: runner coroutines (and thread pool size for sync handlers).
        store: called with committable offsets after each flush (the fetcher's).
        delivering: records waiting for Kafka to take a retry, DLQ record or
            follow-up; shared with admission, which dead-letters bad input.
        on_pause_change: called when a lane fills or drains, so the fetcher
            pauses or resumes its topics.
        states: job states of queues with ``track_status`` (``None``: none).
        trouble: what a failed done-marker write leads to (:mod:`consumers.redis_trouble`).
    """

    def __init__(self, lanes: Lanes, tracker: OffsetTracker, sink: FailureSink,
                 follow_ups: FollowUps, markers: DoneMarkers | None,
                 limiter: RateLimiter | None, stats: BatchMetrics, concurrency: int,
                 store: Callable[[dict[tuple[str, int], int]], None], delivering: set[TPO],
                 on_pause_change: Callable[[], None],
                 states: JobStates | None = None, trouble: RedisTrouble | None = None) -> None:
        self._trouble = trouble or RedisTrouble()
        # Read here, in the worker process: a module constant would hold the pid of
        # the parent that imported it before forking `--processes` children.
        self._worker_id = worker_id()
        self.lanes = lanes
        self.tracker = tracker
        self._sink = sink
        self._follow_ups = follow_ups
        self._markers = markers
        self._limiter = limiter
        self._stats = stats
        self._store = store
        self._states = states
        self._tracked = states.tracked if states is not None else {}
        # Tracked jobs started since the last flush: "running" is written only for
        # those still running at the flush (a fast job goes straight to its end).
        self._started: list[tuple[Slot, Item, int]] = []
        self.slots = [Slot() for _ in range(concurrency)]
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="jobpipe-job")
        self._idle: deque[asyncio.Future[None]] = deque()
        self._finished: list[Item] = []  # succeeded: mark done, then complete
        self._settled: list[TPO] = []  # needs no marker: just complete the offset
        self.delivering = delivering
        self._flush_event = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._on_pause_change = on_pause_change
        self._loop = asyncio.get_running_loop()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> list[asyncio.Task[None]]:
        """Start runners, flusher and watchdog; returns their tasks."""
        tasks = []
        for i, slot in enumerate(self.slots):
            slot.task = asyncio.create_task(self._run_loop(slot), name=f"runner-{i}")
            tasks.append(slot.task)
        tasks.append(asyncio.create_task(self._flush_loop(), name="flusher"))
        tasks.append(asyncio.create_task(self._watchdog(), name="time-limits"))
        if self._tracked:
            tasks.append(asyncio.create_task(self._cancel_watch(), name="cancel-requests"))
        return tasks

    def close(self) -> None:
        """Stop the thread pool (sync jobs still running are left to finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self, n: int) -> None:
        """Wake up to ``n`` idle runners: work arrived."""
        idle = self._idle
        while n > 0 and idle:
            fut = idle.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    def busy(self, tps: set[tuple[str, int]] | None = None) -> bool:
        """Whether a job (of ``tps``, or any) is running or waiting for Kafka."""
        for slot in self.slots:
            item = slot.item
            if item is not None and (tps is None or (item.topic, item.partition) in tps):
                return True
        if tps is None:
            return bool(self.delivering)
        return any((t, p) in tps for t, p, _ in self.delivering)

    def has_unflushed(self) -> bool:
        """Whether finished work still waits for the flusher."""
        return bool(self._finished or self._settled or self._started
                    or (self._states is not None and self._states.has_pending()))

    # --- running -----------------------------------------------------------------------

    async def _run_loop(self, slot: Slot) -> None:
        lanes = self.lanes
        while True:
            item = lanes.next()
            if lanes.changed:
                self._on_pause_change()
            if item is None:
                fut = self._loop.create_future()
                self._idle.append(fut)
                await fut
                continue
            await self._run(item, slot)

    async def _run(self, item: Item, slot: Slot) -> None:
        job, task, spec = item.job, item.task, item.lane.spec
        if self._limiter is not None and (spec.rate_limit_per_s or spec.tenant_rate_limit_per_s):
            await self._limiter.acquire(spec, job.tenant)
        ctx = JobContext(job, self._follow_ups.enqueue, item.timestamp_ms, item.topic,
                         item.partition)
        timeout_s = task.timeout_s or spec.timeout_s
        started = time.perf_counter()
        slot.item, slot.ctx = item, ctx
        slot.deadline = started + timeout_s if timeout_s else math.inf
        slot.timed_out = slot.cancelled = False
        if spec.name in self._tracked:
            self._started.append((slot, item, time.time_ns()))
            self._flush_event.set()
        try:
            with tracing.handler_span(job):  # child of the enqueue span (otel extra)
                if task.is_async:
                    item.result = await task.fn(ctx, job.args)  # type: ignore[misc]
                else:
                    item.result = await self._loop.run_in_executor(self._pool, task.fn, ctx,
                                                                   job.args)
        except asyncio.CancelledError:
            if not (slot.timed_out or slot.cancelled):
                raise
            if slot.task is not None:
                slot.task.uncancel()
            if slot.cancelled:
                self.cancelled(item)
            else:
                self._fail(item, Timeout(f"ran longer than {timeout_s}s and was cancelled"))
        except Exception as exc:
            if slot.cancelled:  # a cancelled job never retries
                self.cancelled(item)
            else:
                self._fail(item, exc)
        else:
            item.run_s = time.perf_counter() - started
            item.finished_ns = time.time_ns()
            if slot.cancelled:  # it stopped early because it was asked to
                self.cancelled(item)
            elif ctx._produced != ctx._delivered:
                self._hold_until_delivered(item, ctx)
            else:
                self._finished.append(item)
                self._flush_event.set()
        finally:
            slot.item = slot.ctx = None
            if slot.cancelled and slot.task is not None and slot.task.cancelling():
                # The handler swallowed its cancellation: this runner goes on.
                slot.task.uncancel()
            if item.lane.ordered:
                self.lanes.release(item)
                if self._idle:
                    self.wake(1)

    def _hold_until_delivered(self, item: Item, ctx: JobContext) -> None:
        tpo = (item.topic, item.partition, item.offset)
        self.delivering.add(tpo)

        def settled() -> None:
            self.delivering.discard(tpo)
            self._finished.append(item)
            self._flush_event.set()

        ctx._on_settled = settled

    def _fail(self, item: Item, exc: BaseException) -> None:
        job, spec = item.job, item.lane.spec
        decision = decide(spec, job.attempt, job.max_attempts, exc, item.task.retry_on)
        error = error_record(exc, self._worker_id)
        tpo = (item.topic, item.partition, item.offset)
        self.delivering.add(tpo)
        source = MessageOrigin(item.topic, item.partition, item.offset, item.msg_key)
        self._stats.failed(job.queue, job.task, decision.retry, decision.reason)
        if self._states is not None and spec.name in self._tracked:
            self._states.add(spec.name, _failed_update(job, decision, error))
        if decision.retry:
            assert decision.delay_s is not None
            log.warning("job %s %s/%s attempt %d failed (%s: %s); retry in %.1fs", job.id,
                        job.queue, job.task, job.attempt, error["type"], error["message"],
                        decision.delay_s + decision.jitter_s)
            self._sink.retry(job, decision.delay_s, decision.jitter_s, error, source,
                             self.delivered(tpo))
        else:
            log.error("job %s %s/%s attempt %d dead-lettered (%s): %s: %s", job.id, job.queue,
                      job.task, job.attempt, decision.reason, error["type"], error["message"])
            self._sink.dead_letter_job(job, decision.reason, error, source, self.delivered(tpo))

    def cancelled(self, item: Item) -> None:
        """Account for a job that was cancelled (skipped, or stopped while running)."""
        job = item.job
        log.info("job %s %s/%s cancelled", job.id, job.queue, job.task)
        self._stats.cancelled(job.queue, 1)
        if self._states is not None:
            self._states.add(job.queue, Update.of(job, jobstatus.CANCELLED))
        self.settle((item.topic, item.partition, item.offset))

    async def _cancel_watch(self) -> None:
        """Stop running jobs someone asked to cancel: an async one's task is
        cancelled, a sync one's ``ctx.cancelled`` is set."""
        assert self._states is not None
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            by_queue: dict[str, list[tuple[Slot, Item]]] = {}
            for slot in self.slots:
                item = slot.item
                if item is not None and not slot.cancelled and item.job.queue in self._tracked:
                    by_queue.setdefault(item.job.queue, []).append((slot, item))
            for queue, running in by_queue.items():
                asked = await self._states.cancel_requested(queue, [i.job.id for _, i in running])
                for (slot, item), yes in zip(running, asked, strict=True):
                    if yes and slot.item is item and slot.ctx is not None:
                        self._stop(slot, item, slot.ctx)

    def _stop(self, slot: Slot, item: Item, ctx: JobContext) -> None:
        slot.cancelled = ctx._cancelled = True
        if item.task.is_async and slot.task is not None:
            log.info("job %s %s/%s: cancel requested, cancelling its task", item.job.id,
                     item.job.queue, item.job.task)
            slot.task.cancel()

    def delivered(self, tpo: TPO) -> Callable[[], None]:
        """A callback for the producer thread: the record of ``tpo`` is safe in Kafka."""
        loop = self._loop

        def report() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._settle_delivered, tpo)

        return report

    def _settle_delivered(self, tpo: TPO) -> None:
        self.delivering.discard(tpo)
        self.settle(tpo)

    def settle(self, tpo: TPO) -> None:
        """Complete an offset that needs no done marker (failed onward, duplicate, parked)."""
        self._settled.append(tpo)
        self._flush_event.set()

    async def _watchdog(self) -> None:
        timed_out = metrics.JOBS_TIMED_OUT
        while True:
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            for slot in self.slots:
                item = slot.item
                if item is None or slot.timed_out or now < slot.deadline:
                    continue
                slot.timed_out = True
                timed_out.labels(item.job.queue, item.job.task).inc()
                if item.task.is_async and slot.task is not None:
                    log.warning("job %s %s/%s over its time limit: cancelling", item.job.id,
                                item.job.queue, item.job.task)
                    slot.task.cancel()
                else:  # a thread cannot be killed: report it, let it finish
                    log.error("job %s %s/%s (sync) is over its time limit and still running",
                              item.job.id, item.job.queue, item.job.task)

    # --- flushing ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_event.wait()
            self._flush_event.clear()
            await self.flush()
            await asyncio.sleep(FLUSH_GAP_S)  # gather what finishes meanwhile

    async def flush(self) -> None:
        """Write done markers, complete offsets, record metrics, hand offsets over."""
        async with self._flush_lock:
            finished, self._finished = self._finished, []
            settled, self._settled = self._settled, []
            if not finished and not settled and not self._started:
                return
            writes = []
            if finished and self._markers is not None:
                writes.append(_mark(self._markers, finished, self._trouble))
            if self._states is not None:
                writes.append(self._write_states(finished))
            # Markers and states go out together: one wait for Redis, not two (each
            # logs its own failure and never raises). A lone write is awaited as
            # it is: gather would wrap it in a Task, a loop step more per flush.
            if len(writes) == 1:
                await writes[0]
            elif writes:
                await asyncio.gather(*writes)
            complete = self.tracker.complete
            by_task: dict[tuple[str, str], list[Item]] = {}
            for item in finished:
                complete(item.topic, item.partition, item.offset)
                job = item.job
                same = by_task.get((job.queue, job.task))
                if same is None:
                    by_task[job.queue, job.task] = [item]
                else:
                    same.append(item)
            for topic, partition, offset in settled:
                complete(topic, partition, offset)
            for (queue, task), items in by_task.items():
                self._stats.finished(queue, task, [i.run_s for i in items],
                                     [i.job.enqueued_at for i in items],
                                     [i.finished_ns for i in items])
            self._store(self.tracker.take_committable())

    async def _write_states(self, finished: list[Item]) -> None:
        assert self._states is not None
        tracked = self._tracked
        started, self._started = self._started, []
        running_on = {"worker": self._worker_id}
        for slot, item, started_ns in started:
            if slot.item is item:
                self._states.add(item.job.queue, Update.of(
                    item.job, jobstatus.RUNNING, {**running_on, "started_at": started_ns}))
        done: dict[tuple[str, int, int], list[str]] = {}  # successes keeping no result
        for item in finished:
            job = item.job
            spec = tracked.get(job.queue)
            if spec is None:
                continue
            if spec.keep_results:
                self._states.add(spec.name, Update.of(job, jobstatus.SUCCEEDED,
                                                      jobstatus.result_fields(spec, item.result)))
            else:
                done.setdefault((spec.name, job.attempt, jobstatus.generation(job.meta)),
                                []).append(job.id)
        for (queue, attempt, generation), job_ids in done.items():
            self._states.add(queue, SameUpdate(job_ids, jobstatus.SUCCEEDED, attempt, generation))
        await self._states.flush()


async def _mark(markers: DoneMarkers, finished: list[Item], trouble: RedisTrouble) -> None:
    """Write the done markers of ``finished``: one pipeline, per queue its TTL."""
    by_queue: dict[str, tuple[QueueSpec, list[Job]]] = {}
    for item in finished:
        spec = item.lane.spec
        entry = by_queue.get(spec.name)
        if entry is None:
            entry = by_queue[spec.name] = (spec, [])
        entry[1].append(item.job)
    try:
        await markers.mark(by_queue.values())
    except Exception as exc:  # a redelivery may then run twice; never stall offsets
        trouble.note("writing done markers", exc)


def _failed_update(job: Job, decision: Decision, error: dict[str, object]) -> Update:
    message = f"{error['type']}: {error['message']}"
    if decision.retry:
        due = time.time_ns() + int(((decision.delay_s or 0.0) + decision.jitter_s) * 1e9)
        return Update.of(job, jobstatus.RETRYING, {"next_at": due, "error": message})
    return Update.of(job, jobstatus.FAILED, {"reason": decision.reason, "error": message})

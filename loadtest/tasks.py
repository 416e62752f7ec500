"""The load test's worker app: ``jobpipe worker loadtest.tasks:app``.

One task, ``noop``: it sleeps the handler time the producer drew for the job
(``args["ms"]``, absent for a pure no-op), then records per-stage latencies
into this process's interval log, the job id into the ledger's ``executed``
role and its partition into the partition trace (who ran what, when). The
runner passes where to write through the environment:

    JPLT_RUN_DIR       the run's report folder (required for recording)
    JPLT_LEDGER_SYNC   "1": write each executed id at once (chaos runs kill workers)

Kafka's message timestamp (``ctx.kafka_timestamp_ms``: when the bridge produced
the job) splits the wait into "in Redis" and "in Kafka"; ``queued`` is their sum.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from typing import Any

from consumers import App, JobContext
from loadtest.ledger import EXECUTED, LedgerWriter
from loadtest.partition_trace import PartitionTrace
from loadtest.recording import (
    INSTRUMENTATION_NS,
    INSTRUMENTATION_SAMPLE_EVERY,
    IntervalLog,
    StageRecorder,
)
from loadtest.run_plan import LEDGER_DIR, LEDGER_SYNC_ENV, RUN_DIR_ENV

app = App("loadtest")


class _ProcessState:
    """This process's recorder, interval log and ledger writer (one per pid)."""

    def __init__(self, run_dir: str) -> None:
        self.pid = os.getpid()
        self.recorder = StageRecorder("worker")
        self.log = IntervalLog(run_dir, self.recorder)
        flush_s = 0.0 if os.environ.get(LEDGER_SYNC_ENV) == "1" else 0.2
        ledger_dir = os.path.join(run_dir, LEDGER_DIR)
        os.makedirs(ledger_dir, exist_ok=True)
        self.ledger = LedgerWriter(ledger_dir, EXECUTED, flush_interval_s=flush_s)
        self.jobs = 0
        self.trace = PartitionTrace(run_dir)
        atexit.register(self.close)

    def close(self) -> None:
        if self.pid != os.getpid():
            return
        self.log.close()
        self.ledger.close()
        self.trace.close()


_state: _ProcessState | None = None
_state_lock = threading.Lock()


def _forget_state_after_fork() -> None:
    # A forked child starts files of its own on its first job. Forgetting the
    # parent's state here, not comparing os.getpid() per job, saves a system
    # call on every job (the worker's hot path at saturation).
    global _state, _state_lock
    _state, _state_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_state_after_fork)


def _process_state() -> _ProcessState | None:
    global _state
    state = _state
    if state is not None:
        return state
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return None
    with _state_lock:
        if _state is None:
            _state = _ProcessState(run_dir)
        return _state


def record_job(ctx: JobContext, args: Any, started_ns: int, finished_ns: int) -> None:
    """Record one finished job's stage latencies and its id (no-op without a run dir)."""
    state = _process_state()
    if state is None:
        return
    state.jobs += 1
    if state.jobs % INSTRUMENTATION_SAMPLE_EVERY:
        _record(state, ctx, args, started_ns, finished_ns)
        return
    cpu_ns = time.thread_time_ns()
    _record(state, ctx, args, started_ns, finished_ns)
    state.recorder.count(INSTRUMENTATION_NS,
                         (time.thread_time_ns() - cpu_ns) * INSTRUMENTATION_SAMPLE_EVERY)


def _record(state: _ProcessState, ctx: JobContext, args: Any, started_ns: int,
            finished_ns: int) -> None:
    intended_ns = args.get("t") if isinstance(args, dict) else None
    state.recorder.record_job_ns((ctx.enqueued_at_ns, started_ns, finished_ns,
                                  ctx.kafka_timestamp_ms or 0,
                                  intended_ns if type(intended_ns) is int else 0))
    state.ledger.record_one(ctx.job_id)
    if ctx.kafka_topic is not None and ctx.kafka_partition is not None:
        state.trace.ran(ctx.kafka_topic, ctx.kafka_partition, started_ns // 1_000_000)


if os.environ.get(RUN_DIR_ENV):
    # The trace's "ready" line: the app is loaded, the worker is about to join.
    _ready = _process_state()
    if _ready is not None:
        _ready.trace.ready(time.time_ns() // 1_000_000)


@app.task("noop")
async def noop(ctx: JobContext, args: Any) -> None:
    """Sleep ``args["ms"]`` milliseconds (if given) and record the job."""
    started_ns = time.time_ns()
    handler_ms = args.get("ms") if isinstance(args, dict) else None
    if handler_ms:
        await asyncio.sleep(float(handler_ms) / 1000)
    record_job(ctx, args, started_ns, time.time_ns())

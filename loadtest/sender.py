"""A load-test producer process: ``python -m loadtest.sender PLAN.json INDEX``.

Sends its share of the open-loop schedule (jobs ``INDEX, INDEX + P, ...``) at
the scheduled times, whatever the system under test does: a job that is late
is sent at once, in a batch with the others that are late, and still carries
its intended send time in ``args["t"]``. Each call is ``enqueue_many`` of the
jobs due now (one round trip), so the ``enqueue`` stage is the duration of one
such call; ``send_lag`` is how late each job left this process.

A sender sends once per :data:`SEND_TICK_NS` tick (a call per queue and
tenant), as a producer service flushing once a millisecond would; a job waits
for its tick, and its end-to-end latency (from the intended send time)
includes that wait. A sender behind its schedule sends again at once. Calling
as soon as one job was due made ~3,000 calls a second of ~7 jobs at 20,000
jobs/s: the sender took whatever CPU the pipeline left, so its CPU per job
measured the box's idle time rather than the jobs (docs/benchmarks.md).

The backend is jobpipe's :class:`ingest.Producer` or, for the peer comparison,
Celery (:mod:`loadtest.peers.celery_peer`).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from jobpipe.errors import JobpipeError, QueueFull
from loadtest.ledger import ACCEPTED, LedgerWriter
from loadtest.recording import INSTRUMENTATION_NS, IntervalLog, StageRecorder
from loadtest.run_plan import RunPlan
from loadtest.schedule import ProducerShare
from loadtest.start_signal import wait_for_go
from loadtest.workload import HandlerTime, job_args, padding

log = logging.getLogger(__name__)

BATCH_MAX = 2000
SEND_TICK_NS = 1_000_000
# (queue, tenant, args list) -> accepted job ids
SendFn = Callable[[str, str | None, list[dict[str, Any]]], list[str]]


def jobpipe_sender() -> tuple[SendFn, Callable[[], None]]:
    """A send function over :class:`ingest.Producer`, and its closer."""
    from ingest import Producer
    from jobpipe.settings import load_settings

    producer = Producer(load_settings())

    def send(queue: str, tenant: str | None, args_list: list[dict[str, Any]]) -> list[str]:
        return producer.enqueue_many(queue, "noop", args_list, tenant=tenant)

    return send, producer.close


def run_sender(plan: RunPlan, index: int, send: SendFn, role: str = "producer",
               ledger: LedgerWriter | None = None) -> None:
    """Send this producer's share of ``plan``'s schedule, recording as it goes."""
    schedule = plan.schedule()
    share = ProducerShare(schedule, index, plan.producers)
    handler = HandlerTime.parse(plan.handler_ms)
    rng = random.Random(plan.seed * 1000 + index)
    tenants = plan.tenant_mix().chooser(plan.seed * 1000 + index)
    pad = padding(plan.payload_bytes)
    recorder = StageRecorder(role)
    intervals = IntervalLog(plan.run_dir, recorder)
    start_ns = wait_for_go(plan, f"{role}-{index}")
    queues = plan.queues
    try:
        delay_s = (start_ns - time.time_ns()) / 1e9
        if delay_s > 0:
            time.sleep(delay_s)
        # Senders tick out of phase: together they would all call at once.
        phase_ns = start_ns + index * SEND_TICK_NS // plan.producers
        while not share.finished:
            now_ns = time.time_ns()
            next_tick_ns = now_ns + SEND_TICK_NS - (now_ns - phase_ns) % SEND_TICK_NS
            due = share.due_jobs((now_ns - start_ns) / 1e9, BATCH_MAX)
            batches: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
            picks = tenants.pick(len(due))
            offsets = schedule.offsets_ns(due)
            for job_index, tenant, offset_ns in zip(due, picks, offsets, strict=True):
                intended_ns = start_ns + offset_ns
                queue = queues[job_index % len(queues)]
                ms = handler.draw_ms(rng) if handler.mean_ms else None
                batches[(queue, tenant)].append(job_args(intended_ns, pad, ms))
            for (queue, tenant), args_list in batches.items():
                _send_batch(send, queue, tenant, args_list, recorder, ledger)
            wait_ns = next_tick_ns - time.time_ns()
            if len(due) < BATCH_MAX and wait_ns > 0:  # caught up: wait for the next tick
                time.sleep(wait_ns / 1e9)
    finally:
        intervals.close()


def _send_batch(send: SendFn, queue: str, tenant: str | None, args_list: list[dict[str, Any]],
                recorder: StageRecorder, ledger: LedgerWriter | None) -> None:
    called_ns = time.time_ns()
    try:
        ids = send(queue, tenant, args_list)
    except QueueFull:
        recorder.count("rejected", len(args_list))
        return
    except JobpipeError as exc:
        log.warning("enqueue of %d jobs failed: %s", len(args_list), exc)
        recorder.count("failed", len(args_list))
        return
    returned_ns = time.time_ns()
    cpu_ns = time.thread_time_ns()
    recorder.record_ns("enqueue", returned_ns - called_ns)
    recorder.record_many_ns("send_lag", [called_ns - args["t"] for args in args_list])
    recorder.count("sent", len(ids))
    if ledger is not None:
        ledger.record(ids)
    recorder.count(INSTRUMENTATION_NS, time.thread_time_ns() - cpu_ns)


def main(argv: list[str]) -> int:
    """Entry point: ``python -m loadtest.sender PLAN.json INDEX [jobpipe|celery]``."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s sender %(message)s")
    plan = RunPlan.from_dict(orjson.loads(Path(argv[0]).read_bytes()))
    index = int(argv[1])
    backend = argv[2] if len(argv) > 2 else "jobpipe"
    if backend == "celery":
        from loadtest.peers.celery_peer import celery_sender

        send, close = celery_sender(plan)
        run_sender(plan, index, send, role="celery-producer")
        close()
        return 0
    send, close = jobpipe_sender()
    ledger = LedgerWriter(Path(plan.run_dir) / "ledger", ACCEPTED)
    try:
        run_sender(plan, index, send, ledger=ledger)
    finally:
        close()
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

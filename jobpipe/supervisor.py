"""Run a stage as N forked processes, restarting any that dies of a transient failure.

Bridges and workers share this: clients are created in the children only,
after fork (librdkafka threads do not survive a fork), Prometheus metrics
switch to multiprocess mode before the first child starts, and each process
that runs a stage freezes its start-up objects for the cyclic collector
(:mod:`jobpipe.gc_tuning`).

Why a child died decides what happens next. A permanent error (wrong
settings, refused credentials, an unsafe Redis: a
:class:`~jobpipe.errors.JobpipeError` that is not ``retryable``) fails the
same way on every start, so the whole command stops with it. Anything else
(Redis or Kafka down, a crash) restarts the child, after a delay that doubles
with each failure in a row.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.queues import SimpleQueue
from types import FrameType

from jobpipe import metrics
from jobpipe.errors import JobpipeError
from jobpipe.gc_tuning import freeze_startup_objects
from jobpipe.settings import Settings

log = logging.getLogger(__name__)
RESTART_BASE_S = 1.0
RESTART_MAX_S = 30.0
# A child that ran this long had recovered: its next failure starts the delays over.
STEADY_S = 60.0
# Exit status of a child that reported a permanent error (sysexits' EX_CONFIG).
EXIT_PERMANENT = 78


def restart_delay_s(failures_in_a_row: int) -> float:
    """The wait before restarting a child after its ``n``-th failure in a row: 1, 2, 4 ... 30 s."""
    return min(RESTART_MAX_S, RESTART_BASE_S * 2.0 ** max(0, failures_in_a_row - 1))


def _child_main(run_child: Callable[[int | None], None], index: int,
                settings: Settings | None, reports: SimpleQueue[JobpipeError]) -> None:
    """Run one child; say why it failed in one line, and report a permanent error."""
    from jobpipe.client_errors import as_jobpipe_error

    # A forked child inherits the supervisor's handlers; when its event loop
    # closes, asyncio puts them back, and a SIGTERM would then run the
    # supervisor's on_signal here (which may only touch its own children).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    name = multiprocessing.current_process().name
    freeze_startup_objects()
    try:
        run_child(index)
    except Exception as exc:
        error = as_jobpipe_error(exc, settings)
        if error is None:
            log.exception("%s crashed", name)  # a bug: the traceback is the report
            raise SystemExit(1) from None
        if error.retryable:
            log.error("%s failed: %s", name, error)
            raise SystemExit(1) from None
        try:
            reports.put(error)
        except Exception:  # an error class that does not pickle: keep its words
            reports.put(JobpipeError(str(error)))
        raise SystemExit(EXIT_PERMANENT) from None


def supervise(role: str, processes: int, run_child: Callable[[int | None], None],
              metrics_port: int | None = None, *, settings: Settings | None = None) -> None:
    """Run ``run_child`` in this process (``processes <= 1``, called with ``None``)
    or in ``processes`` forked children (called with their index) until SIGTERM/SIGINT.

    The first signal is passed on as SIGTERM, so each child finishes its work
    and exits 0; a second one kills the children and exits 1. A child that dies
    on its own is started again with the same index, unless it died of a
    permanent error.

    Args:
        settings: where the services are, so that a child's failure names them.

    Raises:
        JobpipeError: a child's permanent error, once every child has stopped.
    """
    if processes <= 1:
        if metrics_port is not None:
            metrics.serve_metrics(metrics_port)
        freeze_startup_objects()
        run_child(None)
        return
    metrics.prepare_multiprocess()
    if metrics_port is not None:
        metrics.serve_metrics(metrics_port)
    ctx = multiprocessing.get_context("fork")
    reports: SimpleQueue[JobpipeError] = ctx.SimpleQueue()
    children: dict[int, BaseProcess] = {}
    started_at: dict[int, float] = {}
    failures: dict[int, int] = {}
    restart_at: dict[int, float] = {}
    stopping = False

    def spawn(i: int) -> None:
        child = ctx.Process(target=_child_main, args=(run_child, i, settings, reports),
                            name=f"{role}-{i}")
        child.start()
        children[i] = child
        started_at[i] = time.monotonic()

    def signal_children(kill: bool) -> None:
        for child in children.values():
            if child.pid is not None and child.is_alive():
                child.kill() if kill else child.terminate()

    supervisor_pid = os.getpid()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if os.getpid() != supervisor_pid:  # a child between fork and its own handlers
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if stopping:
            signal_children(kill=True)
            sys.exit(1)
        stopping = True
        restart_at.clear()
        signal_children(kill=False)

    def stop_all() -> None:
        nonlocal stopping
        stopping = True
        restart_at.clear()
        signal_children(kill=False)
        for child in children.values():
            child.join()
            if child.pid is not None:
                metrics.mark_process_dead(child.pid)
        children.clear()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for i in range(processes):
        spawn(i)
    while children or restart_at:
        now = time.monotonic()
        for i, at in list(restart_at.items()):
            if at <= now:
                del restart_at[i]
                spawn(i)
        if not children:
            time.sleep(0.2)
        for i, child in list(children.items()):
            child.join(0.2)
            if child.exitcode is None:
                continue
            if child.pid is not None:
                metrics.mark_process_dead(child.pid)
            del children[i]
            if stopping:
                continue
            if child.exitcode == EXIT_PERMANENT:
                error = reports.get()
                log.error("%s process %s stopped for good: %s; stopping every %s process",
                          role, child.name, error, role)
                stop_all()
                raise error
            ran_s = time.monotonic() - started_at[i]
            failures[i] = 1 if ran_s >= STEADY_S else failures.get(i, 0) + 1
            delay_s = restart_delay_s(failures[i])
            log.error("%s process %s exited with %s; starting it again in %g s", role,
                      child.name, child.exitcode, delay_s)
            restart_at[i] = time.monotonic() + delay_s

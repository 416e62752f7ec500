"""Run a stage as N forked processes, restarting any that dies.

Bridges and workers share this: clients are created in the children only,
after fork (librdkafka threads do not survive a fork), and Prometheus metrics
switch to multiprocess mode before the first child starts.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

from jobpipe import metrics

log = logging.getLogger(__name__)
RESTART_BACKOFF_S = 1.0


def supervise(role: str, processes: int, run_child: Callable[[int | None], None],
              metrics_port: int | None = None) -> None:
    """Run ``run_child`` in this process (``processes <= 1``, called with ``None``)
    or in ``processes`` forked children (called with their index) until SIGTERM/SIGINT.

    The first signal is passed on as SIGTERM, so each child finishes its work
    and exits 0; a second one kills the children and exits 1. A child that dies
    on its own is started again with the same index.
    """
    if processes <= 1:
        if metrics_port is not None:
            metrics.serve_metrics(metrics_port)
        run_child(None)
        return
    metrics.prepare_multiprocess()
    if metrics_port is not None:
        metrics.serve_metrics(metrics_port)
    ctx = multiprocessing.get_context("fork")
    children: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = False

    def spawn(i: int) -> None:
        child = ctx.Process(target=run_child, args=(i,), name=f"{role}-{i}")
        child.start()
        children[i] = child

    def signal_children(kill: bool) -> None:
        for child in children.values():
            if child.pid is not None and child.is_alive():
                child.kill() if kill else child.terminate()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            signal_children(kill=True)
            sys.exit(1)
        stopping = True
        signal_children(kill=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for i in range(processes):
        spawn(i)
    while children:
        for i, child in list(children.items()):
            child.join(0.2)
            if child.exitcode is None:
                continue
            if child.pid is not None:
                metrics.mark_process_dead(child.pid)
            del children[i]
            if not stopping:
                log.error("%s process %s exited with %s; starting it again", role, child.name,
                          child.exitcode)
                time.sleep(RESTART_BACKOFF_S)
                spawn(i)

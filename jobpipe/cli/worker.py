"""``jobpipe worker MODULE[:ATTR]``: run an app's handlers on jobs from Kafka."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from types import FrameType

import click

from jobpipe.cli.context import CliContext
from jobpipe.settings import Settings

log = logging.getLogger(__name__)
RESTART_BACKOFF_S = 1.0


def _split(queues: str | None) -> list[str] | None:
    return [q.strip() for q in queues.split(",") if q.strip()] if queues else None


def run_one(settings: Settings, target: str, queues: list[str] | None) -> None:
    """Run one worker in this process until SIGTERM or SIGINT (a second one exits at once)."""
    from consumers import Worker, load_app

    Worker(settings, load_app(target), queues).run()


def run_workers(settings: Settings, target: str, queues: list[str] | None, processes: int,
                metrics_port: int | None) -> None:
    """Run ``processes`` workers (forked children) until a signal; restart a child that dies.

    Kafka and Redis clients are created in the children only, after fork.
    """
    from consumers import load_app
    from jobpipe import metrics

    load_app(target)  # a bad MODULE is one clear error, before any fork
    if processes <= 1:
        if metrics_port is not None:
            metrics.serve_metrics(metrics_port)
        run_one(settings, target, queues)
        return
    metrics.prepare_multiprocess()
    if metrics_port is not None:
        metrics.serve_metrics(metrics_port)
    ctx = multiprocessing.get_context("fork")
    children: dict[int, multiprocessing.process.BaseProcess] = {}
    stopping = False

    def spawn(i: int) -> None:
        child = ctx.Process(target=run_one, args=(settings, target, queues), name=f"worker-{i}")
        child.start()
        children[i] = child

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:  # second signal: children exit at once, so do we
            for child in children.values():
                if child.pid is not None and child.is_alive():
                    child.kill()
            sys.exit(1)
        stopping = True
        for child in children.values():
            if child.pid is not None and child.is_alive():
                child.terminate()  # SIGTERM: each child finishes in-flight jobs, exits 0

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for i in range(processes):
        spawn(i)
    while True:
        for i, child in list(children.items()):
            child.join(0.2)
            if child.exitcode is None:
                continue
            if child.pid is not None:
                metrics.mark_process_dead(child.pid)
            if stopping:
                del children[i]
            else:
                log.error("worker process %s exited with %s; starting it again", child.name,
                          child.exitcode)
                time.sleep(RESTART_BACKOFF_S)
                spawn(i)
        if stopping and not children:
            return


@click.command()
@click.argument("target", metavar="MODULE[:ATTR]")
@click.option("--queues", help="Comma-separated queues to serve (default: all).")
@click.option("--processes", type=click.IntRange(1, 256), help="Worker processes to fork.")
@click.option("--concurrency", type=click.IntRange(1, 100_000),
              help="Jobs running at once per process.")
@click.option("--metrics-port", type=int, help="Serve Prometheus /metrics on this port.")
@click.pass_obj
def worker(obj: CliContext, target: str, queues: str | None, processes: int | None,
           concurrency: int | None, metrics_port: int | None) -> None:
    """Run the handlers of MODULE's ``app`` (or ATTR) until SIGTERM; exits 0 after
    finishing in-flight jobs."""
    flags: dict[str, int] = {}
    if processes is not None:
        flags["processes"] = processes
    if concurrency is not None:
        flags["concurrency"] = concurrency
    settings = obj.settings({"worker": flags} if flags else None)
    wanted = _split(queues)
    settings.topology.select(wanted)  # unknown queue: one clear error before forking
    if "." not in sys.path and "" not in sys.path:
        sys.path.insert(0, "")  # MODULE is found from the current directory, like python -m
    run_workers(settings, target, wanted, settings.worker.processes, metrics_port)

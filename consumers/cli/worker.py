"""``jobpipe worker MODULE[:ATTR]``: run an app's handlers on jobs from Kafka."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import click

from jobpipe.cli.acl import echo_setuser, user_and_queues
from jobpipe.cli.context import CliContext, split_queues
from jobpipe.settings import Settings
from jobpipe.supervisor import supervise

log = logging.getLogger(__name__)


def run_one(settings: Settings, target: str, queues: list[str] | None) -> None:
    """Run one worker in this process until SIGTERM or SIGINT (a second one exits at once)."""
    from consumers import Worker, load_app

    Worker(settings, load_app(target), queues).run()


def run_workers(settings: Settings, target: str, queues: list[str] | None, processes: int,
                metrics_port: int | None) -> None:
    """Run ``processes`` workers (forked children) until a signal; restart a child that dies."""
    from consumers import load_app

    load_app(target)  # a bad MODULE is one clear error, before any fork

    def run_child(index: int | None) -> None:
        worker = settings.worker if index is None else settings.worker.process(index)
        run_one(replace(settings, worker=worker), target, queues)

    supervise("worker", processes, run_child, metrics_port, settings=settings)


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
    wanted = split_queues(queues)
    settings.topology.select(wanted)  # unknown queue: one clear error before forking
    if "." not in sys.path and "" not in sys.path:
        sys.path.insert(0, "")  # MODULE is found from the current directory, like python -m
    run_workers(settings, target, wanted, settings.worker.processes, metrics_port)


@click.command(name="worker")
@user_and_queues("jobpipe-worker")
@click.pass_obj
def worker_acl(obj: CliContext, user: str, queues: str) -> None:
    """An ACL SETUSER command for a worker of QUEUES: their idempotency markers,
    rate limits and pause state, parking and its commands only.

    Append ``on >PASSWORD`` to enable it. It keeps CONFIG GET, so workers still
    check eviction and AOF at start.
    """
    from consumers.acl import worker_acl_rules

    settings = obj.settings()
    echo_setuser(user, worker_acl_rules(settings.namespace,
                                        settings.topology.select(split_queues(queues))))

"""``jobpipe bench replicas``: what ``redis.wait_replicas`` costs a producer.

Alternates the same two measurements of ``jobpipe bench ingest`` with
``wait_replicas`` 0 and N, round after round (so a busy machine weighs on both
alike): the latency of single ``enqueue`` calls (p50, p99) and the jobs/s of
``enqueue_many``. Prints each round, the medians and the ratios. Point it at a
Redis with replicas (``JOBPIPE_REDIS_URL``, ``JOBPIPE_REDIS_CLUSTER=true`` for a
cluster); its keys live in a namespace of their own and are deleted after.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, replace

import click
from rich.console import Console
from rich.table import Table

from jobpipe.cli.context import CliContext
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, Topology
from loadtest.bench.ingest import bench_enqueue, bench_enqueue_many


@dataclass(frozen=True, slots=True)
class Round:
    """One measurement with one ``wait_replicas``."""

    wait_replicas: int
    p50_us: float
    p99_us: float
    many_jobs_s: float


def measure(settings: Settings, wait_replicas: int, single: int, batch: int,
            batches: int) -> Round:
    """Both measurements with ``redis.wait_replicas = wait_replicas``."""
    settings = replace(settings, redis=replace(settings.redis, wait_replicas=wait_replicas))
    hist = bench_enqueue(settings, single)
    return Round(wait_replicas, hist.get_value_at_percentile(50) / 1000,
                 hist.get_value_at_percentile(99) / 1000,
                 bench_enqueue_many(settings, batch, batches))


def _median(rounds: list[Round], field: str) -> float:
    return float(statistics.median(float(getattr(r, field)) for r in rounds))


@click.command()
@click.option("--wait-replicas", default=1, show_default=True, help="Compared with 0.")
@click.option("--rounds", default=3, show_default=True)
@click.option("--single", default=5_000, show_default=True, help="Single enqueues timed.")
@click.option("--batch", default=1_000, show_default=True, help="Jobs per enqueue_many.")
@click.option("--batches", default=200, show_default=True, help="enqueue_many calls timed.")
@click.pass_obj
def replicas(obj: CliContext, wait_replicas: int, rounds: int, single: int, batch: int,
             batches: int) -> None:
    """Enqueue latency and throughput with redis.wait_replicas 0 and N, alternating."""
    settings = obj.settings() if obj is not None else Settings()
    settings = replace(settings, namespace=f"jpbench{os.getpid()}",
                       topology=Topology({"default": QueueSpec("default")}))
    done: list[Round] = []
    table = Table(title=f"redis.wait_replicas 0 vs {wait_replicas}, {rounds} rounds")
    for column in ("round", "wait_replicas", "enqueue p50 µs", "enqueue p99 µs",
                   f"enqueue_many({batch}) jobs/s"):
        table.add_column(column, justify="right")
    for n in range(1, rounds + 1):
        for wait in (0, wait_replicas):
            r = measure(settings, wait, single, batch, batches)
            done.append(r)
            table.add_row(str(n), str(wait), f"{r.p50_us:,.0f}", f"{r.p99_us:,.0f}",
                          f"{r.many_jobs_s:,.0f}")
    off = [r for r in done if r.wait_replicas == 0]
    on = [r for r in done if r.wait_replicas == wait_replicas]
    for label, group in (("median", off), ("median", on)):
        table.add_row(label, str(group[0].wait_replicas), f"{_median(group, 'p50_us'):,.0f}",
                      f"{_median(group, 'p99_us'):,.0f}", f"{_median(group, 'many_jobs_s'):,.0f}")
    table.add_row("ratio on/off", "", f"{_median(on, 'p50_us') / _median(off, 'p50_us'):.2f}",
                  f"{_median(on, 'p99_us') / _median(off, 'p99_us'):.2f}",
                  f"{_median(on, 'many_jobs_s') / _median(off, 'many_jobs_s'):.2f}")
    Console().print(table)

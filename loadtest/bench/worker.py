"""``jobpipe bench worker``: no-op jobs/s of the worker, beside Celery in the same run.

Pre-fills a fresh namespace's main topic with N no-op jobs while the queue is
paused (not timed), starts 1 and then 2 worker processes (forked children
running ``Worker.run_until_idle``), waits until they have joined the group and
share its 6 partitions evenly, then resumes the queue. The rate is jobs /
(last completion - first completion) over every process, so group join and
rebalances are not timed, and every process drains from the start.
Idempotency markers are on, as in production. Then the same no-op through Celery (Redis broker,
database 15 of the same Redis, ``--pool solo`` and prefork ``-c 2``): a queue
pre-filled with ``apply_async``, rate from the queue draining.

Every wait is bounded (:mod:`loadtest.bench.children`): a worker process that
dies, never sees the queue drained, or never ends fails the run with one line
naming it (and how the group's partitions stood), and no process is left running.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

import click
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.cli.context import CliContext
from jobpipe.connections import kafka_admin_config, kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, Topology
from jobpipe.wipe import delete_keys, delete_topics
from loadtest.bench.children import (
    EXIT_S,
    STARTUP_S,
    drain_timeout_s,
    reports,
    require_drained,
    running,
)

QUEUE = "bench"
PARTITIONS = 6
# The bench's waits are bounded: a run that stalls fails in one line instead of
# hanging. Celery's worker may take STARTUP_S to take its first task, and its
# queue drains at CELERY_MIN_RATE at the least (~1,500/s quiet).
CELERY_MIN_RATE = 50
_clock: dict[str, float] = {}


def _bench_app() -> Any:
    from consumers import App, JobContext

    app = App("bench")

    @app.task("noop")
    async def noop(ctx: JobContext, args: Any) -> None:
        now = time.time()
        if "first" not in _clock:
            _clock["first"] = now
        _clock["last"] = now
        _clock["n"] = _clock.get("n", 0) + 1

    return app


class Report(NamedTuple):
    """What one worker process reports when its run ends."""

    pid: int
    drained: bool  # run_until_idle saw the group caught up
    jobs: int  # jobs it ran
    first: float  # time.time() of its first job run
    last: float  # and of its last


def _child(settings: Settings, timeout_s: float, out: Any) -> None:
    from consumers import Worker

    drained = Worker(settings, _bench_app(), retry_relay=False).run_until_idle(timeout_s)
    out.put(Report(os.getpid(), drained, int(_clock.get("n", 0)), _clock.get("first", 0.0),
                   _clock.get("last", 0.0)))


def _fill(settings: Settings, jobs: int) -> None:
    producer = Producer(kafka_producer_config(settings.kafka, **{"linger.ms": 20,
                                                                   "compression.type": "lz4"}))
    topic = names.main_topic(settings.namespace, QUEUE)
    for i in range(jobs):
        raw = encode(Job(id=new_job_id(), queue=QUEUE, task="noop", args={"i": i},
                         enqueued_at=now_ns()))
        while True:
            try:
                producer.produce(topic, raw, partition=i % PARTITIONS)  # even shares
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(120)
    if left:
        raise click.ClickException(f"{left} of {jobs} jobs were not written to {topic} "
                                   "within 120 s")


def _wait_assigned(settings: Settings, processes: int, partitions: int,
                   timeout_s: float = 60.0) -> None:
    """Wait until ``processes`` group members hold an even share of ``partitions``."""
    admin = AdminClient(kafka_admin_config(settings.kafka))
    group = names.group_id(settings.namespace, "workers")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
        except Exception:
            desc = None
        if desc is not None and len(desc.members) == processes:
            shares = [len(m.assignment.topic_partitions) for m in desc.members]
            if sum(shares) == partitions and max(shares) - min(shares) <= 1:
                return
        time.sleep(0.1)
    raise click.ClickException(f"{processes} workers did not share {partitions} partitions "
                               f"within {timeout_s:.0f} s ({_group_state(settings)})")


def _group_state(settings: Settings) -> str:
    """The worker group's members and their partitions, in a few words (for an error)."""
    admin = AdminClient(kafka_admin_config(settings.kafka))
    group = names.group_id(settings.namespace, "workers")
    try:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except Exception as exc:
        return f"group not described: {exc}"
    shares = [sorted(tp.partition for tp in m.assignment.topic_partitions)
              for m in desc.members]
    return f"group {desc.state.name.lower()}, members holding partitions {shares}"


def _reports(children: list[Any], out: Any, settings: Settings,
             timeout_s: float) -> list[Report]:
    """Every child's report; raises in one line when a child died without reporting,
    reported that it never drained, or is still at it after ``timeout_s``."""
    got: list[Report] = reports(children, out, timeout_s, "worker",
                                lambda: _group_state(settings))
    require_drained(got, "worker", timeout_s)
    return got


def run_jobpipe(base: Settings, jobs: int, processes: int) -> float:
    """Jobs/s of ``processes`` workers draining ``jobs`` pre-filled no-op jobs.

    The queue is paused while it is filled and while the workers join the group
    and settle their partitions; the clock starts at the first job run after
    the resume and stops at the last, so every process drains from the start.
    """
    from consumers.control import pause_queue, resume_queue

    ns = f"bench{uuid.uuid4().hex[:8]}"
    spec = QueueSpec(QUEUE, partitions=PARTITIONS, retry_tiers_s=(1.0,))
    # Workers re-read pause flags every control_interval_s: poll fast so they all
    # see the resume within a few ms of each other.
    settings = replace(base, namespace=ns, topology=Topology({QUEUE: spec}),
                       worker=replace(base.worker, control_interval_s=0.02))
    client = redis.Redis.from_url(settings.redis.url)
    apply_topics(settings)
    try:
        pause_queue(client, ns, QUEUE)
        _fill(settings, jobs)
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        timeout_s = drain_timeout_s(jobs)
        children = [ctx.Process(target=_child, args=(settings, timeout_s, out))
                    for _ in range(processes)]
        with running(children, "worker"):
            _wait_assigned(settings, processes, PARTITIONS)
            time.sleep(1.0)  # assignment callbacks run; first fetches fill the (paused) lanes
            resume_queue(client, ns, spec)
            got = _reports(children, out, settings, timeout_s + EXIT_S)
        done = sum(r.jobs for r in got)
        if done < jobs:
            raise click.ClickException(f"only {done} of {jobs} jobs ran")
        ran = [r for r in got if r.jobs]
        first, last = min(r.first for r in ran), max(r.last for r in ran)
        if processes > 1:
            click.echo(f"  {processes} processes ran {sorted(r.jobs for r in got)} jobs; "
                       f"first jobs {1000 * (max(r.first for r in ran) - first):.0f} ms apart, "
                       f"last jobs {1000 * (last - min(r.last for r in ran)):.0f} ms apart")
        return float(done / max(last - first, 1e-9))
    finally:
        delete_topics(settings.kafka, ns)
        delete_keys(client, ns)


def _wait_celery(proc: subprocess.Popen[bytes], still: Callable[[], int], timeout_s: float,
                 what: str) -> None:
    """Wait while ``still()`` is true; fail in one line if the Celery worker exits or
    ``timeout_s`` passes first (``what`` says what it was doing)."""
    deadline = time.monotonic() + timeout_s
    while still():
        if proc.poll() is not None:
            raise click.ClickException(f"the celery worker exited with code {proc.returncode} "
                                       f"while {what}")
        if time.monotonic() > deadline:
            raise click.ClickException(f"the celery worker was still {what} after "
                                       f"{timeout_s:.0f} s")
        time.sleep(0.005)


def run_celery(redis_url: str, jobs: int, pool_args: list[str]) -> float:
    """Jobs/s of a Celery worker draining ``jobs`` pre-filled no-op tasks."""
    from loadtest.peers import celery_peer

    url = celery_peer.broker_url(redis_url)
    queue = f"jpbench-{uuid.uuid4().hex[:8]}"
    celery_peer.app.conf.broker_url = url
    for i in range(jobs):
        celery_peer.noop.apply_async(args=[{"i": i}], queue=queue)
    client = redis.Redis.from_url(url)
    env = {**os.environ, celery_peer.BROKER_ENV: url}
    env.pop(celery_peer.RUN_DIR_ENV, None)
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A",
                             "loadtest.peers.celery_peer:app", "worker", "-Q", queue,
                             *pool_args, "-l", "WARNING", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], env=env)
    try:
        _wait_celery(proc, lambda: client.llen(queue) >= jobs, STARTUP_S,
                     "starting (no task taken)")
        start, left = time.monotonic(), client.llen(queue)
        _wait_celery(proc, lambda: client.llen(queue) > 0, STARTUP_S + left / CELERY_MIN_RATE,
                     f"draining {left} tasks")
        return float(left / max(time.monotonic() - start, 1e-9))
    finally:
        proc.terminate()
        try:
            proc.wait(EXIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        client.delete(queue)


@click.command()
@click.option("--jobs", type=click.IntRange(1000), default=200_000, show_default=True)
@click.option("--celery-jobs", type=click.IntRange(100), default=20_000, show_default=True)
@click.pass_obj
def worker(obj: CliContext, jobs: int, celery_jobs: int) -> None:
    """Worker throughput on no-op jobs (1 and 2 processes) and Celery's, same run."""
    settings = obj.settings()
    rows = [(f"jobpipe worker, {n} process{'es' if n > 1 else ''}", run_jobpipe(settings, jobs, n))
            for n in (1, 2)]
    rows.append(("celery --pool solo", run_celery(settings.redis.url, celery_jobs,
                                                  ["--pool", "solo"])))
    rows.append(("celery --pool prefork -c 2", run_celery(settings.redis.url, celery_jobs,
                                                          ["--pool", "prefork", "-c", "2"])))
    for name, rate in rows:
        click.echo(f"{name:32} {rate:12,.0f} jobs/s")
    click.echo(f"ratio jobpipe 1 process / celery solo: {rows[0][1] / rows[2][1]:.1f}x")
    click.echo(f"ratio jobpipe 2 processes / celery prefork -c 2: {rows[1][1] / rows[3][1]:.1f}x")

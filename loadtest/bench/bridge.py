"""``jobpipe bench bridge``: Redis-to-Kafka throughput of the bridge, beside a bare producer.

Pre-fills Redis with N small jobs (not timed), then times the bridge draining
them into Kafka with 1 process and with 2, and, on the same broker in the same
run, a bare confluent-kafka producer loop over the same bytes with the same
producer settings (``produce()`` per message, and ``produce_batch()`` as the
bridge uses). Everything lives in a fresh namespace that is deleted afterwards.
Every wait on a bridge process is bounded (:mod:`loadtest.bench.children`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from dataclasses import dataclass, replace
from multiprocessing.queues import Queue
from typing import NamedTuple

import click
import redis
from confluent_kafka import Producer

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.cli.context import CliContext
from jobpipe.connections import redis_client
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, Topology
from jobpipe.wipe import delete_keys, delete_topics
from loadtest.bench.children import EXIT_S, drain_timeout_s, reports, require_drained, running

QUEUE = "bench"


@dataclass(frozen=True)
class Result:
    """One timed run."""

    name: str
    jobs: int
    seconds: float
    cpu_s: float = 0.0  # CPU the measured processes used (bridge runs only)

    @property
    def rate(self) -> float:
        """Jobs per second."""
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


def make_jobs(n: int, args_bytes: int, queue: str = QUEUE) -> list[bytes]:
    """``n`` encoded jobs of ``queue`` with ``args_bytes`` of padding each."""
    pad = "x" * args_bytes
    return [encode(Job(id=new_job_id(), queue=queue, task="t", args=pad, enqueued_at=now_ns()))
            for _ in range(n)]


def prefill(client: redis.Redis[bytes], settings: Settings, jobs: list[bytes],
            queue: str = QUEUE) -> None:
    """Spread the jobs over ``queue``'s ready shards, 1,000 per LPUSH."""
    spec = settings.topology.get(queue)
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(jobs), 1000):
        shard = (i // 1000) % spec.shards
        pipe.lpush(names.ready_key(settings.namespace, queue, shard), *jobs[i:i + 1000])
    pipe.execute()


def bare_producer(settings: Settings, jobs: list[bytes], batched: bool) -> Result:
    """A plain producer loop over the same bytes, with the bridge's producer settings."""
    from bridge.relay import producer_config

    producer = Producer(producer_config(settings))
    topic = names.main_topic(settings.namespace, QUEUE)
    delivered = [0]

    def on_delivery(err: object, msg: object) -> None:
        delivered[0] += err is None

    start = time.perf_counter()
    if batched:
        for i in range(0, len(jobs), 1000):
            messages = [{"value": v} for v in jobs[i:i + 1000]]
            while messages:  # what the local queue refused, again after serving reports
                producer.produce_batch(topic, messages, on_delivery=on_delivery)
                messages = [{"value": m["value"]} for m in messages if m.get("_error")]
                producer.poll(0.01 if messages else 0)
    else:
        for i, value in enumerate(jobs):
            while True:
                try:
                    producer.produce(topic, value, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.01)
            if i % 1000 == 999:
                producer.poll(0)
    producer.flush(120)
    seconds = time.perf_counter() - start
    name = "bare producer, produce_batch()" if batched else "bare producer, produce() per job"
    return Result(name, delivered[0], seconds)


class BridgeRow(NamedTuple):
    """What one bridge process reports when its run ends."""

    pid: int
    drained: bool  # run_until_idle saw the lists empty and every batch acked
    start: float  # time.time() when it started
    end: float  # and when it ended
    jobs: int  # jobs it acked
    cpu_s: float  # CPU seconds it used


def _bridge_child(settings: Settings, queues: list[str], bridge_id: str, timeout_s: float,
                  out: Queue[BridgeRow]) -> None:
    from bridge import Bridge

    bridge = Bridge(settings, queues, bridge_id)
    start, cpu = time.time(), time.process_time()
    drained = bridge.run_until_idle(timeout_s)
    out.put(BridgeRow(os.getpid(), drained, start, time.time(), sum(bridge.acked_jobs.values()),
                      time.process_time() - cpu))


def bridge_run(settings: Settings, processes: int, jobs: int,
               queues: tuple[str, ...] = (QUEUE,)) -> Result:
    """Time ``processes`` forked bridges draining the ``jobs`` pre-filled in ``queues``."""
    ctx = multiprocessing.get_context("fork")
    out: Queue[BridgeRow] = ctx.Queue()
    timeout_s = drain_timeout_s(jobs)
    children = [ctx.Process(target=_bridge_child,
                            args=(settings, list(queues), f"bench-{i}", timeout_s, out))
                for i in range(processes)]
    with running(children, "bridge"):
        rows = reports(children, out, timeout_s + EXIT_S, "bridge")
    require_drained(rows, "bridge", timeout_s)
    seconds = max(r.end for r in rows) - min(r.start for r in rows)
    return Result(f"bridge, {processes} process{'es' if processes > 1 else ''}",
                  sum(r.jobs for r in rows), seconds, sum(r.cpu_s for r in rows))


def cleanup(client: redis.Redis[bytes], settings: Settings) -> None:
    """Delete the bench namespace's keys and topics."""
    delete_keys(client, settings.namespace)
    delete_topics(settings.kafka, settings.namespace)


@click.command()
@click.option("--jobs", "n_jobs", type=click.IntRange(1000), default=300_000, show_default=True)
@click.option("--args-bytes", type=int, default=0, show_default=True,
              help="Padding in args (0 gives the smallest envelope, about 140 bytes).")
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option("--max-processes", type=click.IntRange(1, 8), default=2, show_default=True)
@click.pass_obj
def bridge(obj: CliContext, n_jobs: int, args_bytes: int, partitions: int,
           max_processes: int) -> None:
    """Bridge throughput (Redis to Kafka) for 1..N processes vs a bare producer."""
    base = obj.settings()
    settings = replace(base, namespace=f"bench{uuid.uuid4().hex[:8]}",
                       topology=Topology({QUEUE: QueueSpec(QUEUE, partitions=partitions)}))
    apply_topics(settings)
    client = redis_client(settings.redis)
    jobs = make_jobs(n_jobs, args_bytes)
    click.echo(f"{n_jobs} jobs of {len(jobs[0])} bytes; broker {settings.kafka.bootstrap}; "
               f"{partitions} partitions; batch {settings.bridge.batch_size}, "
               f"{settings.bridge.max_batches_in_flight} in flight, "
               f"linger {settings.bridge.linger_ms} ms, {settings.bridge.compression}")
    try:
        results = [bare_producer(settings, jobs, batched=False),
                   bare_producer(settings, jobs, batched=True)]
        for processes in range(1, max_processes + 1):
            prefill(client, settings, jobs)
            results.append(bridge_run(settings, processes, n_jobs))
    finally:
        cleanup(client, settings)
        client.close()
    baseline = results[0].rate
    click.echo(f"{'run':36} {'jobs':>9} {'seconds':>8} {'jobs/s':>10} {'vs produce()':>13}")
    for r in results:
        click.echo(f"{r.name:36} {r.jobs:9d} {r.seconds:8.2f} {r.rate:10,.0f} "
                   f"{r.rate / baseline:12.2f}x")

"""``jobpipe bench scaleout``: batch intake on 1 Redis primary against 3, and a bridge on 3.

Starts, privately on free ports, one plain Redis and a 3-primary Redis Cluster
(one replica each, as ``jobpipe dev up --redis-cluster 3`` runs it), both with
AOF ``everysec``. It picks one queue name per cluster primary by the hash slot
of the queue's tag, so each primary holds one queue. Then, alternating rounds,
N forked producer processes run ``enqueue_many`` for a fixed time, producer
``i`` into queue ``i mod 3``, against the single Redis and against the
cluster. CPU per job comes from ``/proc``: the producers' own and each
redis-server's. Medians of the rounds give the ratio and the per-primary
figure ``jobpipe capacity --from-scaleout`` plans with. Last, a bridge
process drains jobs pre-filled into the 3 queues (so it takes from all 3
primaries) into the Kafka of the settings (the dev stack's broker).
Everything it started is stopped by PID and its files removed; every wait on a
forked process is bounded (:mod:`loadtest.bench.children`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, NamedTuple

import click
from redis.crc import key_slot

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.cli.context import CliContext
from jobpipe.connections import redis_client
from jobpipe.devstack.ports import free_port, free_port_block
from jobpipe.devstack.processes import stop_all
from jobpipe.devstack.redis_cluster import BUS_PORT_OFFSET, LocalRedisCluster, cluster_nodes
from jobpipe.devstack.redis_server import RedisConfig, RedisServer
from jobpipe.errors import StackError
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, Topology
from jobpipe.wipe import delete_keys, delete_topics
from loadtest.bench.bridge import bridge_run, make_jobs, prefill
from loadtest.bench.children import STARTUP_S, reports, running
from loadtest.cpu import CLOCK_TICKS_PER_S, cpu_seconds, listening_pid

ARGS_100B = {"user": "u" * 60, "order": 123456789, "flag": True}  # as bench ingest
PRIMARIES = 3
# Lists are emptied this often so a round's memory stays small; UNLINK frees
# them off Redis's main thread.
TRIM_EVERY_JOBS = 200_000

SlotRanges = Sequence[tuple[int, int]]


def queue_slot(queue: str) -> int:
    """The hash slot of every key of ``queue`` (they share the tag ``{queue}``)."""
    return key_slot(names.ready_key("ns", queue, 0).encode())


def pick_queues(primaries: Sequence[SlotRanges], prefix: str = "so") -> list[str]:
    """One queue name per primary, ``prefix<n>`` with the lowest ``n`` whose slot it serves.

    Raises:
        StackError: a primary serves no slot that any of the first 100,000 names hits.
    """
    picked = []
    for ranges in primaries:
        name = next((f"{prefix}{n}" for n in range(100_000)
                     if any(lo <= queue_slot(f"{prefix}{n}") <= hi for lo, hi in ranges)), None)
        if name is None:
            raise StackError(f"no queue name {prefix}<n> lands on slots {list(ranges)}")
        picked.append(name)
    return picked


@dataclass(frozen=True)
class Round:
    """One timed intake round against one target."""

    target: str
    jobs: int
    seconds: float
    producer_cpu_s: float
    redis_cpu_s: dict[str, float]  # per redis-server, by name
    box_busy_cores: float  # every process on the box, ours and other users'

    @property
    def rate(self) -> float:
        """Jobs per second, all producers together."""
        return self.jobs / self.seconds

    def us_per_job(self, cpu_s: float) -> float:
        """CPU microseconds per job."""
        return cpu_s * 1e6 / self.jobs


class ProducerRow(NamedTuple):
    """What one producer process reports when its round ends."""

    pid: int
    jobs: int
    seconds: float  # wall
    cpu_s: float


def _producer_child(settings: Settings, queue: str, batch: int, seconds: float,
                    go: Event, out: Queue[ProducerRow]) -> None:
    from ingest import Producer

    args_list = [ARGS_100B] * batch
    spec = settings.topology.get(queue)
    ready = [names.ready_key(settings.namespace, queue, s) for s in range(spec.shards)]
    client = redis_client(settings.redis)
    with Producer(settings) as producer:
        producer.enqueue_many(queue, "bench", args_list[:100])  # connections, script cache
        go.wait()
        jobs, since_trim = 0, 0
        start, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            producer.enqueue_many(queue, "bench", args_list)
            jobs += batch
            since_trim += batch
            if since_trim >= TRIM_EVERY_JOBS:
                client.unlink(*ready)
                since_trim = 0
        out.put(ProducerRow(os.getpid(), jobs, time.perf_counter() - start,
                            time.process_time() - cpu))
    client.close()


def box_busy_s() -> tuple[float, float]:
    """(busy, wall) CPU seconds of the whole box so far, from ``/proc/stat``'s ``cpu`` line:
    busy is everything but idle and iowait, wall is busy + idle + iowait."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / CLOCK_TICKS_PER_S, sum(ticks) / CLOCK_TICKS_PER_S


def _redis_cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}


def intake_round(target: str, settings: Settings, queues: list[str], redis_pids: dict[str, int],
                 producers: int, batch: int, seconds: float) -> Round:
    """``producers`` forked processes run ``enqueue_many`` for ``seconds`` at once."""
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    out: Queue[ProducerRow] = ctx.Queue()
    children = [ctx.Process(target=_producer_child,
                            args=(settings, queues[i % len(queues)], batch, seconds, go, out))
                for i in range(producers)]
    with running(children, "producer"):
        time.sleep(1.0)  # let every child connect and warm up before the clock starts
        before, box_before = _redis_cpu(redis_pids), box_busy_s()
        go.set()
        # Each runs ``seconds`` once go is set (one batch more at most); STARTUP_S
        # covers a child still connecting then.
        rows = reports(children, out, STARTUP_S + seconds, "producer")
        after, box_after = _redis_cpu(redis_pids), box_busy_s()
    client = redis_client(settings.redis)
    delete_keys(client, settings.namespace)
    client.close()
    cores = os.cpu_count() or 1
    busy = (box_after[0] - box_before[0]) / (box_after[1] - box_before[1]) * cores
    return Round(target, sum(r.jobs for r in rows), max(r.seconds for r in rows),
                 sum(r.cpu_s for r in rows), {n: after[n] - before[n] for n in redis_pids}, busy)


@contextmanager
def private_redis(home: Path) -> Iterator[tuple[RedisServer, LocalRedisCluster]]:
    """One plain Redis and a 3-primary cluster on free ports; stopped by PID on exit."""
    executable = shutil.which("redis-server") or "redis-server"
    single = RedisServer(home / "single", RedisConfig(free_port()), executable=executable,
                         name="redis-single")
    cluster = LocalRedisCluster(home / "cluster",
                                free_port_block(2 * PRIMARIES, shadow_offset=BUS_PORT_OFFSET),
                                PRIMARIES)
    try:
        single.start()
        cluster.start(executable, shutil.which("redis-cli") or "redis-cli")
        yield single, cluster
    finally:
        stop_all([single.process, *cluster.processes])


def _primary_pids(cluster: LocalRedisCluster) -> tuple[list[SlotRanges], dict[str, int]]:
    primaries = sorted((n for n in cluster_nodes(cluster.base_port) if n.role == "primary"),
                       key=lambda n: n.port)
    pids = {f"primary-{n.port}": cluster.node(n.port).process.pid for n in primaries}
    replicas = {f"replica-{node.config.port}": node.process.pid for node in cluster.nodes
                if f"primary-{node.config.port}" not in pids}
    return [n.slots for n in primaries], {k: v for k, v in {**pids, **replicas}.items()
                                           if v is not None}


def _summary(rounds: list[Round]) -> dict[str, Any]:
    rates = [r.rate for r in rounds]
    middle = rounds[rates.index(statistics.median_low(rates))]  # the median round's CPU split
    return {
        "jobs_per_s": statistics.median(rates),
        "rounds_jobs_per_s": rates,
        "producer_cpu_us_per_job": middle.us_per_job(middle.producer_cpu_s),
        "redis_cpu_us_per_job": {n: middle.us_per_job(c) for n, c in middle.redis_cpu_s.items()},
        "redis_cores": {n: c / middle.seconds for n, c in middle.redis_cpu_s.items()},
        "producer_cores": middle.producer_cpu_s / middle.seconds,
        "box_busy_cores": middle.box_busy_cores,
    }


def bridge_from_primaries(settings: Settings, queues: list[str], redis_pids: dict[str, int],
                          jobs: int) -> dict[str, Any]:
    """One bridge process drains ``jobs`` pre-filled evenly into ``queues`` (one per primary)."""
    apply_topics(settings)
    client = redis_client(settings.redis)
    try:
        for queue in queues:
            prefill(client, settings, make_jobs(jobs // len(queues), 0, queue), queue)
        kafka_pid = listening_pid(int(settings.kafka.bootstrap.split(",")[0].rsplit(":", 1)[1]))
        pids = {**redis_pids, **({"kafka": kafka_pid} if kafka_pid else {})}
        before = _redis_cpu(pids)
        result = bridge_run(settings, 1, jobs // len(queues) * len(queues), tuple(queues))
        after = _redis_cpu(pids)
    finally:
        delete_keys(client, settings.namespace)
        delete_topics(settings.kafka, settings.namespace)
        client.close()
    return {"jobs": result.jobs, "jobs_per_s": result.rate,
            "bridge_cpu_us_per_job": result.cpu_s * 1e6 / max(result.jobs, 1),
            "cpu_us_per_job": {n: (after[n] - before[n]) * 1e6 / max(result.jobs, 1)
                               for n in pids}}


def _load_average() -> list[float]:
    return list(os.getloadavg())


@click.command()
@click.option("--producers", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Rounds per target, alternating single and cluster.")
@click.option("--seconds", type=click.FloatRange(0.5), default=5.0, show_default=True,
              help="Length of one intake round.")
@click.option("--batch", type=click.IntRange(1), default=1000, show_default=True,
              help="Jobs per enqueue_many.")
@click.option("--bridge-jobs", type=click.IntRange(0), default=300_000, show_default=True,
              help="Jobs the bridge drains from the 3 primaries (0: skip the bridge run).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the figures here (for `jobpipe capacity --from-scaleout`).")
@click.pass_obj
def scaleout(obj: CliContext, producers: int, rounds: int, seconds: float, batch: int,
             bridge_jobs: int, json_path: Path | None) -> None:
    """Intake on 1 Redis primary vs a 3-primary cluster, and a bridge on 3 primaries."""
    base = obj.settings() if obj is not None else Settings()
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="jobpipe-scaleout-") as tmp, \
            private_redis(Path(tmp)) as (single, cluster):
        slot_ranges, cluster_pids = _primary_pids(cluster)
        queues = pick_queues(slot_ranges)
        settings = replace(base, namespace=f"so{os.getpid()}",
                           topology=Topology({q: QueueSpec(q) for q in queues}))
        on_single = replace(settings, redis=replace(settings.redis, url=single.url))
        on_cluster = replace(settings, redis=replace(settings.redis, url=cluster.url,
                                                     cluster=True))
        single_pid = single.process.pid
        single_pids = {"redis-single": single_pid} if single_pid else {}
        click.echo(f"queues {queues} on primaries "
                   f"{[n for n in cluster_pids if n.startswith('primary')]}; {producers} "
                   f"producers, batch {batch}, {seconds:g} s rounds; load average "
                   f"{load_before[0]:.2f}")
        results: dict[str, list[Round]] = {"single": [], "cluster": []}
        for n in range(rounds):
            for target, where, pids in (("single", on_single, single_pids),
                                        ("cluster", on_cluster, cluster_pids)):
                r = intake_round(target, where, queues, pids, producers, batch, seconds)
                results[target].append(r)
                click.echo(f"round {n + 1} {target:8} {r.rate:12,.0f} jobs/s; box busy "
                           f"{r.box_busy_cores:.2f} cores")
        bridge = (bridge_from_primaries(on_cluster, queues, cluster_pids, bridge_jobs)
                  if bridge_jobs else None)
    single_sum, cluster_sum = _summary(results["single"]), _summary(results["cluster"])
    report = {
        "producers": producers, "batch": batch, "seconds": seconds, "rounds": rounds,
        "cores": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": _load_average(),
        "single": single_sum, "cluster": cluster_sum,
        "ratio": cluster_sum["jobs_per_s"] / single_sum["jobs_per_s"],
        # What one primary carried: the planner's figure (a lower bound when the
        # producers, not redis-server, ran out of CPU; see redis_cores).
        "redis_primary_per_s": single_sum["jobs_per_s"],
        "bridge_from_3_primaries": bridge,
    }
    _print(report)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"figures written to {json_path}")


def _print(r: dict[str, Any]) -> None:
    click.echo(f"{'target':10} {'jobs/s (median)':>16} {'producers µs/job':>17}  "
               "redis µs/job (cores)")
    for target in ("single", "cluster"):
        s = r[target]
        redis = ", ".join(f"{n} {us:.2f} ({s['redis_cores'][n]:.2f})"
                          for n, us in s["redis_cpu_us_per_job"].items())
        click.echo(f"{target:10} {s['jobs_per_s']:16,.0f} {s['producer_cpu_us_per_job']:17.2f}  "
                   f"{redis}; producers {s['producer_cores']:.2f} cores, box busy "
                   f"{s['box_busy_cores']:.2f} of {r['cores']}")
    click.echo(f"ratio cluster / single: {r['ratio']:.2f}x; load average after "
               f"{r['load_average_after'][0]:.2f} on {r['cores']} cores")
    if r["bridge_from_3_primaries"]:
        b = r["bridge_from_3_primaries"]
        others = ", ".join(f"{n} {us:.2f}" for n, us in b["cpu_us_per_job"].items())
        click.echo(f"bridge from 3 primaries: {b['jobs_per_s']:,.0f} jobs/s, bridge "
                   f"{b['bridge_cpu_us_per_job']:.2f} µs/job; {others} µs/job")

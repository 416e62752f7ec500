"""``jobpipe bench ingest``: how fast jobs get into Redis, against peers in the same run.

Measures, with 100-byte args, against one Redis (``--redis-url``, default the
settings' one): single ``enqueue`` latency (HdrHistogram), ``enqueue_many``
jobs/s from one process, the same as a ratio to ``redis-benchmark -P 100 -t
lpush`` run here, HTTP intake jobs/s with batches of 100 and its p99 request
latency, Celery's ``apply_async`` rate as a ratio, and the CPU one
``enqueue_many`` call of a few sizes costs this process and Redis. Every key it writes is
deleted afterwards (its own namespace, and ``mylist``/the Celery queue in a
spare database).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import click
import redis
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.table import Table

from jobpipe.cli.context import CliContext
from jobpipe.connections import redis_client
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, Topology
from jobpipe.wipe import delete_keys

ARGS_100B = {"user": "u" * 60, "order": 123456789, "flag": True}  # 100 bytes of JSON
SPARE_DB = 13  # redis-benchmark's mylist and Celery's queue live here, then go
P99_GOAL_US = 250.0
MANY_GOAL_JOBS_S = 500_000.0


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, 60 * 10**9, 3)  # ns, up to a minute


def _cleanup(settings: Settings) -> None:
    client = redis_client(settings.redis)  # a cluster's client on a cluster
    delete_keys(client, settings.namespace)
    client.close()


def bench_enqueue(settings: Settings, count: int) -> HdrHistogram:
    """Latency of ``count`` single enqueues, one after another."""
    from ingest import Producer

    hist = _histogram()
    with Producer(settings) as producer:
        for _ in range(min(count, 1000)):  # warm up connections and the script cache
            producer.enqueue("default", "bench", ARGS_100B)
        clock = time.perf_counter_ns
        for _ in range(count):
            start = clock()
            producer.enqueue("default", "bench", ARGS_100B)
            hist.record_value(clock() - start)
    _cleanup(settings)
    return hist


def bench_enqueue_many(settings: Settings, batch: int, batches: int) -> float:
    """jobs/s of ``enqueue_many`` (only the calls are timed; lists emptied between)."""
    from ingest import Producer

    args_list = [ARGS_100B] * batch
    busy_s = 0.0
    with Producer(settings) as producer:
        producer.enqueue_many("default", "bench", args_list[:1000])
        for _ in range(batches):
            start = time.perf_counter()
            producer.enqueue_many("default", "bench", args_list)
            busy_s += time.perf_counter() - start
            _cleanup(settings)
    return batch * batches / busy_s


# enqueue_many calls of one size between two readings of Redis's CPU (and
# emptyings of the list), and the calls that warm each size up.
CALLS_PER_ROUND = 100


@dataclass(frozen=True)
class CallCost:
    """The CPU one ``enqueue_many`` call of ``jobs`` jobs costs."""

    jobs: int
    client_us: float  # this process
    redis_us: float | None  # the Redis server; None on a cluster

    @property
    def label(self) -> str:
        """Its row's name in the table."""
        return f"CPU per enqueue_many of {self.jobs:,}"


def _redis_cpu_s(client: redis.Redis[bytes]) -> float:
    """CPU seconds the Redis server process has used: all its threads, no child."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def bench_call_cpu(settings: Settings, sizes: Sequence[int], calls: int) -> list[CallCost]:
    """CPU per ``enqueue_many`` call of each size: this process's and Redis's.

    The producer's cost is mostly per call, not per job, so a small call's
    figure says what a producer sending many small batches pays. Redis's share
    is the server's CPU over the calls: meaningful only when nothing else uses
    that Redis meanwhile (``None`` on a cluster). Lists are emptied every
    ``CALLS_PER_ROUND`` calls, outside the timing.
    """
    from ingest import Producer

    client = None if settings.redis.cluster else redis_client(settings.redis)
    costs = []
    with Producer(settings) as producer:
        for size in sizes:
            args_list = [ARGS_100B] * size
            for _ in range(CALLS_PER_ROUND):  # connections, script cache, id buffer
                producer.enqueue_many("default", "bench", args_list)
            _cleanup(settings)
            client_s = redis_s = 0.0
            for done in range(0, calls, CALLS_PER_ROUND):
                redis_before = _redis_cpu_s(client) if client is not None else 0.0
                before = time.process_time()
                for _ in range(min(CALLS_PER_ROUND, calls - done)):
                    producer.enqueue_many("default", "bench", args_list)
                client_s += time.process_time() - before
                if client is not None:
                    redis_s += _redis_cpu_s(client) - redis_before
                _cleanup(settings)
            costs.append(CallCost(size, client_s / calls * 1e6,
                                  redis_s / calls * 1e6 if client is not None else None))
    if client is not None:
        client.close()
    return costs


def bench_redis_benchmark(url: str, requests: int) -> float | None:
    """``redis-benchmark -P 100 -t lpush -d 100 -q`` against the same server, in a spare db."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    pool = redis.ConnectionPool.from_url(url)
    kw = pool.connection_kwargs
    pool.disconnect()
    cmd = [tool, "-h", str(kw.get("host", "127.0.0.1")), "-p", str(kw.get("port", 6379)),
           "-P", "100", "-t", "lpush", "-n", str(requests), "-d", "100", "-q",
           "--dbnum", str(SPARE_DB)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    spare = redis.Redis(host=kw.get("host", "127.0.0.1"), port=kw.get("port", 6379), db=SPARE_DB)
    spare.delete("mylist")
    spare.close()
    found = re.findall(r"LPUSH: ([\d.]+) requests per second", out)
    return float(found[-1]) if found else None


def bench_http(settings: Settings, seconds: float, connections: int) -> tuple[float, float]:
    """HTTP intake (in-process server on uvloop): jobs/s with batches of 100, p99 request µs."""
    import aiohttp
    import orjson
    import uvloop
    from aiohttp import web

    from ingest import AsyncProducer
    from ingest.http import create_app

    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []

    async def serve() -> None:
        async with AsyncProducer(settings) as producer:
            runner = web.AppRunner(create_app(settings, producer), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            ready.set()
            await asyncio.to_thread(stop.wait)
            await runner.cleanup()

    server = threading.Thread(target=uvloop.run, args=(serve(),), daemon=True)
    server.start()
    ready.wait(30)
    body = orjson.dumps({"jobs": [{"task": "bench", "args": ARGS_100B}] * 100})
    hist = _histogram()
    sent = [0]

    async def client() -> None:
        url = f"http://127.0.0.1:{port[0]}/v1/queues/default/jobs"
        headers = {"Content-Type": "application/json"}
        if settings.ingest.tokens:
            headers["Authorization"] = f"Bearer {settings.ingest.tokens[0]}"
        async with aiohttp.ClientSession() as http:
            end = time.monotonic() + seconds

            async def one() -> None:
                while time.monotonic() < end:
                    start = time.perf_counter_ns()
                    async with http.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 202:
                            raise click.ClickException(f"HTTP intake answered {resp.status}")
                    hist.record_value(time.perf_counter_ns() - start)
                    sent[0] += 100

            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(connections)))
            sent.append(int((time.monotonic() - started) * 1000))

    uvloop.run(client())
    stop.set()
    server.join(10)
    _cleanup(settings)
    return sent[0] / (sent[1] / 1000), hist.get_value_at_percentile(99) / 1000


def bench_celery(url: str, count: int) -> float | None:
    """Celery ``apply_async`` calls/s (broker = the same Redis, spare db); only the sends."""
    try:
        from celery import Celery
    except ImportError:
        return None
    broker = re.sub(r"/\d+$", "", url.rstrip("/")) + f"/{SPARE_DB}"
    app = Celery("jobpipe_bench", broker=broker)
    app.conf.task_default_queue = "jobpipe-bench"

    @app.task(name="bench")  # type: ignore[untyped-decorator]
    def bench(args: Any) -> None:  # never run: only enqueued
        return None

    for _ in range(100):
        bench.apply_async((ARGS_100B,))
    start = time.perf_counter()
    for _ in range(count):
        bench.apply_async((ARGS_100B,))
    rate = count / (time.perf_counter() - start)
    spare = redis.Redis.from_url(broker)
    spare.delete("jobpipe-bench", "_kombu.binding.jobpipe-bench",
                 "_kombu.binding_permanent.jobpipe-bench")
    spare.close()
    return rate


def run_bench(settings: Settings, *, single: int, batch: int, batches: int,
              redis_benchmark_n: int, http_s: float, celery_n: int,
              call_sizes: Sequence[int], calls: int) -> dict[str, Any]:
    """Run every measurement once and return the figures."""
    hist = bench_enqueue(settings, single)
    many = bench_enqueue_many(settings, batch, batches)
    call_cpu = bench_call_cpu(settings, call_sizes, calls) if calls > 0 else []
    lpush = bench_redis_benchmark(settings.redis.url, redis_benchmark_n)
    http_rate, http_p99_us = bench_http(settings, http_s, connections=8)
    celery = bench_celery(settings.redis.url, celery_n)
    return {
        "enqueue_p50_us": hist.get_value_at_percentile(50) / 1000,
        "enqueue_p99_us": hist.get_value_at_percentile(99) / 1000,
        "enqueue_p999_us": hist.get_value_at_percentile(99.9) / 1000,
        "enqueue_many_jobs_s": many,
        "redis_benchmark_lpush_s": lpush,
        "http_jobs_s": http_rate,
        "http_p99_us": http_p99_us,
        "celery_apply_async_s": celery,
        "call_cpu": call_cpu,
    }


def _table(r: dict[str, Any]) -> Table:
    table = Table(title="jobpipe bench ingest (100-byte args)")
    for column in ("measure", "value", "goal / peer"):
        table.add_column(column)

    def ok(met: bool) -> str:
        return "[green]met[/]" if met else "[red]not met[/]"

    table.add_row("enqueue p50 / p99 / p99.9", f"{r['enqueue_p50_us']:.0f} / "
                  f"{r['enqueue_p99_us']:.0f} / {r['enqueue_p999_us']:.0f} µs",
                  f"p99 < {P99_GOAL_US:.0f} µs: {ok(r['enqueue_p99_us'] < P99_GOAL_US)}")
    table.add_row("enqueue_many", f"{r['enqueue_many_jobs_s']:,.0f} jobs/s",
                  f">= {MANY_GOAL_JOBS_S:,.0f}: "
                  f"{ok(r['enqueue_many_jobs_s'] >= MANY_GOAL_JOBS_S)}")
    if r["redis_benchmark_lpush_s"]:
        table.add_row("redis-benchmark -P 100 lpush", f"{r['redis_benchmark_lpush_s']:,.0f} "
                      "ops/s", f"enqueue_many = "
                      f"{r['enqueue_many_jobs_s'] / r['redis_benchmark_lpush_s']:.2f}x")
    table.add_row("HTTP intake, batches of 100", f"{r['http_jobs_s']:,.0f} jobs/s",
                  f"p99 request {r['http_p99_us'] / 1000:.1f} ms")
    if r["celery_apply_async_s"]:
        table.add_row("Celery apply_async", f"{r['celery_apply_async_s']:,.0f} jobs/s",
                      f"enqueue_many = "
                      f"{r['enqueue_many_jobs_s'] / r['celery_apply_async_s']:.0f}x, "
                      f"single enqueue = "
                      f"{1e6 / r['enqueue_p50_us'] / r['celery_apply_async_s']:.1f}x (p50)")
    cost: CallCost
    for cost in r["call_cpu"]:
        here, in_redis = cost.client_us, cost.redis_us
        if in_redis is None:  # a cluster: no one server's CPU to read
            table.add_row(cost.label, f"{here:.0f} µs here",
                          f"{here / cost.jobs:.2f} µs per job (without Redis)")
        else:
            table.add_row(cost.label, f"{here:.0f} µs here + {in_redis:.0f} µs Redis",
                          f"{(here + in_redis) / cost.jobs:.2f} µs per job")
    return table


def parse_call_sizes(text: str) -> list[int]:
    """``--call-sizes``: a comma-separated list of positive counts.

    Raises:
        click.BadParameter: anything else, named in one line.
    """
    try:
        sizes = [int(size) for size in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of counts: {text!r}",
                                 param_hint="--call-sizes") from None
    if any(size < 1 for size in sizes):
        raise click.BadParameter("each size must be at least 1", param_hint="--call-sizes")
    return sizes


@click.command()
@click.option("--redis-url", help="Redis to measure (default: the settings' one).")
@click.option("--single", default=20_000, show_default=True, help="Single enqueues timed.")
@click.option("--batch", default=50_000, show_default=True, help="Jobs per enqueue_many.")
@click.option("--batches", default=10, show_default=True, help="enqueue_many calls timed.")
@click.option("--redis-benchmark-n", default=1_000_000, show_default=True,
              help="Requests for redis-benchmark.")
@click.option("--http-s", default=5.0, show_default=True, help="Seconds of HTTP load.")
@click.option("--celery-n", default=5_000, show_default=True, help="apply_async calls timed.")
@click.option("--call-sizes", default="1,15,40,500", show_default=True,
              help="Jobs per enqueue_many call whose CPU per call is measured.")
@click.option("--calls", type=click.IntRange(0), default=3_000, show_default=True,
              help="enqueue_many calls per size for the CPU per call (0: skip).")
@click.pass_obj
def ingest(obj: CliContext, redis_url: str | None, single: int, batch: int, batches: int,
           redis_benchmark_n: int, http_s: float, celery_n: int, call_sizes: str,
           calls: int) -> None:
    """Enqueue latency and throughput, HTTP intake, vs redis-benchmark and Celery."""
    settings = obj.settings() if obj is not None else Settings()
    if redis_url:
        settings = replace(settings, redis=replace(settings.redis, url=redis_url))
    # Its own namespace and a plain queue, whatever the settings declare.
    settings = replace(settings, namespace=f"jpbench{os.getpid()}",
                       topology=Topology({"default": QueueSpec("default")}))
    sizes = parse_call_sizes(call_sizes)
    results = run_bench(settings, single=single, batch=batch, batches=batches,
                        redis_benchmark_n=redis_benchmark_n, http_s=http_s, celery_n=celery_n,
                        call_sizes=sizes, calls=calls)
    Console().print(_table(results))

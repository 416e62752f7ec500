"""``jobpipe bench latency``: latency at a low rate, beside Celery and bare Kafka, same run.

Open loop at ``--rate`` jobs/s (200) for ``--duration`` s (15) after ``--warmup`` s
(3) of the same load. Latency = the handler's start minus the wall time taken
just before the single ``enqueue()`` (``apply_async()`` for Celery,
``produce()`` for Kafka) of the job. The handler appends one record to a Redis
list (:mod:`loadtest.bench.latency_app`). After the load, ``--quiet`` s (3) of
nothing, then one more job: the latency of a job into an idle pipeline.

- **jobpipe**: one ``jobpipe bridge`` and one ``jobpipe worker`` process, default
  settings (plus any ``JOBPIPE_*`` in the environment), a fresh namespace, one
  partition. Then the CPU the idle bridge and the idle worker use over
  ``--idle-cpu`` s (10), from ``/proc/<pid>/stat``.
- **celery**: ``celery worker --pool prefork`` with Redis as broker (database 15
  of the same server), the same handler as a Celery task.
- **kafka**: the floor: a bare confluent-kafka producer (``acks=all``, idempotent,
  ``linger.ms=0``) and a consumer in another process, one topic, one
  partition; latency is ``produce()`` to the consumer's ``poll()`` returning it.

The busy hour is the same command at Celery's own drain rate (``jobpipe bench
worker`` measures it): ``--rate R --systems jobpipe,celery``, where the mean
latency is the figure to compare (Celery's queue grows there, jobpipe's not).

Each of ``--runs`` rounds (3) runs every system once, in turn; the summary
is the median of the rounds. The machine may be shared: compare systems
within a round, not with figures from another day.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import click
import orjson
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from jobpipe.admin import apply_topics
from jobpipe.cli.context import CliContext
from jobpipe.connections import kafka_admin_config, kafka_consumer_config, kafka_producer_config
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec, Topology
from loadtest.bench.latency_app import REDIS_URL_ENV
from loadtest.cpu import cpu_seconds

QUEUE = "bench"
SYSTEMS = ("jobpipe", "celery", "kafka")
READY_TIMEOUT_S = 180.0  # first job through a freshly started pipeline (group join)
DRAIN_TIMEOUT_S = 180.0  # Celery falls behind on a loaded machine

Send = Callable[[int], object]  # called with the wall time (ns) taken just before sending


@dataclass(frozen=True)
class Load:
    """What one system is put through."""

    rate: int
    warmup_s: float
    duration_s: float
    quiet_s: float
    idle_cpu_s: float


@dataclass(frozen=True)
class Figures:
    """One system in one round; milliseconds."""

    p50: float
    p99: float
    max: float
    quiet: float
    jobs: int
    extra: dict[str, float]
    mean: float  # the busy-hour figure: at a rate near saturation the tail sets it


def open_loop(rate: int, seconds: float, send: Send) -> int:
    """Send at ``rate``/s on a fixed schedule for ``seconds`` (late sends catch up)."""
    count = int(rate * seconds)
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(time.time_ns())
    return count


def wait_records(client: redis.Redis[bytes], key: str, count: int,
                 timeout_s: float) -> list[tuple[int, int, int]]:
    """The ``count`` records of ``key`` as (sent ns, started ns, Kafka ms), once all arrived."""
    deadline = time.monotonic() + timeout_s
    while client.llen(key) < count:
        if time.monotonic() > deadline:
            raise click.ClickException(f"only {client.llen(key)} of {count} jobs ran "
                                       f"within {timeout_s:.0f} s")
        time.sleep(0.01)
    out = []
    for line in client.lrange(key, 0, -1):
        sent, started, kafka_ms = line.split()
        out.append((int(sent), int(started), int(kafka_ms)))
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def measure(client: redis.Redis[bytes], prefix: str, make_send: Callable[[str], Send],
            load: Load, pids: dict[str, int] | None = None) -> Figures:
    """Probe until the first job runs, warm up, measure, then one job after quiet.

    ``pids``: processes whose CPU per job over the measured load is reported.
    """
    probe = make_send(f"{prefix}:probe")
    probe(time.time_ns())
    wait_records(client, f"{prefix}:probe", 1, READY_TIMEOUT_S)
    warm = open_loop(load.rate, load.warmup_s, make_send(f"{prefix}:warm"))
    wait_records(client, f"{prefix}:warm", warm, DRAIN_TIMEOUT_S)
    cpu_before = {name: cpu_seconds(pid) or 0.0 for name, pid in (pids or {}).items()}
    sent = open_loop(load.rate, load.duration_s, make_send(f"{prefix}:main"))
    records = wait_records(client, f"{prefix}:main", sent, DRAIN_TIMEOUT_S)
    cpu = {f"cpu_us_per_job_{name}": 1e6 * ((cpu_seconds(pid) or 0.0) - cpu_before[name]) / sent
           for name, pid in (pids or {}).items()}
    time.sleep(load.quiet_s)  # the quiet itself is what is measured next
    make_send(f"{prefix}:quiet")(time.time_ns())
    quiet = wait_records(client, f"{prefix}:quiet", 1, DRAIN_TIMEOUT_S)[0]
    lat = [(started - t) / 1e6 for t, started, _ in records]
    extra: dict[str, float] = dict(cpu)
    if all(kafka_ms for _, _, kafka_ms in records):  # jobpipe: split at the Kafka write
        before = [kafka_ms - t / 1e6 for t, _, kafka_ms in records]
        after = [started / 1e6 - kafka_ms for _, started, kafka_ms in records]
        extra |= {"to_kafka_p50": percentile(before, 0.5), "to_kafka_p99": percentile(before, 0.99),
                 "from_kafka_p50": percentile(after, 0.5),
                 "from_kafka_p99": percentile(after, 0.99)}
    return Figures(percentile(lat, 0.5), percentile(lat, 0.99), max(lat),
                   (quiet[1] - quiet[0]) / 1e6, len(lat), extra, statistics.fmean(lat))


def idle_cores(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Share of one core each process used over ``seconds`` of doing nothing."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    out = {}
    for name, pid in pids.items():
        start, end = before[name], cpu_seconds(pid)
        if start is None or end is None:
            raise click.ClickException(f"the {name} process exited while idle")
        out[f"idle_cpu_{name}"] = (end - start) / seconds
    return out


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _delete_keys(client: redis.Redis[bytes], pattern: str) -> None:
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.unlink(*keys)


def _delete_topics(settings: Settings, prefix: str) -> None:
    admin = AdminClient(kafka_admin_config(settings.kafka))
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if mine:
        admin.delete_topics(mine, operation_timeout=10)


def run_jobpipe(base: Settings, load: Load, log_dir: Path) -> Figures:
    """One bridge and one worker process in a fresh namespace, default settings."""
    from ingest import Producer as JobProducer

    ns = f"lat{uuid.uuid4().hex[:8]}"
    settings = replace(base, namespace=ns,
                       topology=Topology({QUEUE: QueueSpec(QUEUE, partitions=1)}))
    config = log_dir / f"{ns}.toml"
    config.write_text(f"[queues.{QUEUE}]\npartitions = 1\n")
    env = {**os.environ, "JOBPIPE_CONFIG": str(config), "JOBPIPE_NAMESPACE": ns,
           "JOBPIPE_REDIS_URL": settings.redis.url,
           "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap, REDIS_URL_ENV: settings.redis.url}
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis.url)
    apply_topics(settings)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with (log_dir / f"{ns}.log").open("ab") as out:
            for argv in (["bridge"], ["worker", "loadtest.bench.latency_app"]):
                procs.append(subprocess.Popen([sys.executable, "-m", "jobpipe", *argv], env=env,
                                              stdout=out, stderr=subprocess.STDOUT))
        with JobProducer(settings) as producer:
            def make_send(key: str) -> Send:
                return lambda t: producer.enqueue(QUEUE, "record", {"t": t, "to": key})

            pids = {"bridge": procs[0].pid, "worker": procs[1].pid}
            figures = measure(client, f"{ns}:rec", make_send, load, pids)
        if load.idle_cpu_s > 0:
            cpu = idle_cores(pids, load.idle_cpu_s)
            figures = replace(figures, extra={**figures.extra, **cpu})
        return figures
    finally:
        _stop(procs)
        _delete_topics(settings, f"{ns}.")
        _delete_keys(client, f"{ns}:*")
        client.close()


def run_celery(base: Settings, load: Load, log_dir: Path) -> Figures:
    """``celery worker --pool prefork`` on Redis (database 15), the same handler."""
    from loadtest.peers import celery_peer

    url = celery_peer.broker_url(base.redis.url)
    queue = f"jplat-{uuid.uuid4().hex[:8]}"
    celery_peer.app.conf.broker_url = url
    env = {**os.environ, celery_peer.BROKER_ENV: url}
    env.pop(celery_peer.RUN_DIR_ENV, None)
    client: redis.Redis[bytes] = redis.Redis.from_url(url)
    with (log_dir / f"{queue}.log").open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A",
                                 "loadtest.peers.celery_peer:app", "worker", "-Q", queue,
                                 "--pool", "prefork", "-l", "WARNING", "--without-gossip",
                                 "--without-mingle", "--without-heartbeat"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def make_send(key: str) -> Send:
            return lambda t: celery_peer.latency_record.apply_async(
                args=[{"t": t, "to": key}], queue=queue)

        return measure(client, f"{queue}:rec", make_send, load)
    finally:
        _stop([proc])
        _delete_keys(client, f"{queue}*")
        _delete_keys(client, f"_kombu.binding.{queue}*")
        client.close()


def _floor_consumer(kafka: Any, topic: str, ready: Event, out: Queue[list[bytes]]) -> None:
    """Child process: report each message as ``<kind>:<sent ns>:<poll ns>``."""
    consumer = Consumer(kafka_consumer_config(kafka, f"{topic}-g"))
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        while True:
            msg = consumer.poll(1.0)
            now = time.time_ns()
            if msg is None or msg.error():
                continue
            value = msg.value() or b""
            ready.set()
            if value == b"end":
                break
            got.append(b"%s:%d" % (value, now))
    finally:
        consumer.close()
        out.put(got)


def run_kafka_floor(base: Settings, load: Load) -> Figures:
    """A bare producer (acks=all, idempotent, linger.ms=0) to a consumer in another process."""
    topic = f"latfloor-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(kafka_admin_config(base.kafka))
    admin.create_topics([NewTopic(topic, 1, base.kafka.replication_factor)])[topic].result(30)
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_floor_consumer, args=(base.kafka, topic, ready, out))
    child.start()
    producer = Producer(kafka_producer_config(base.kafka, **{"linger.ms": 0}))
    try:
        def send(kind: bytes) -> Send:
            def go(t: int) -> None:
                producer.produce(topic, b"%s:%d" % (kind, t))
                producer.poll(0)
            return go

        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.is_set():  # the consumer has joined and reads
            if time.monotonic() > deadline:
                raise click.ClickException("the floor's consumer read nothing")
            send(b"p")(time.time_ns())
            ready.wait(0.2)
        open_loop(load.rate, load.warmup_s, send(b"w"))
        sent = open_loop(load.rate, load.duration_s, send(b"m"))
        producer.flush(DRAIN_TIMEOUT_S)
        time.sleep(load.quiet_s)
        send(b"q")(time.time_ns())
        producer.produce(topic, b"end")
        producer.flush(DRAIN_TIMEOUT_S)
        got = out.get(timeout=DRAIN_TIMEOUT_S)
        child.join(30)
    finally:
        if child.is_alive():
            child.terminate()
        admin.delete_topics([topic], operation_timeout=10)
    lat: dict[bytes, list[float]] = {b"m": [], b"q": []}
    for line in got:
        kind, sent_ns, polled_ns = line.split(b":")
        if kind in lat:
            lat[kind].append((int(polled_ns) - int(sent_ns)) / 1e6)
    main = lat[b"m"]
    if len(main) < sent or not lat[b"q"]:
        raise click.ClickException(f"the floor's consumer got {len(main)} of {sent} messages")
    return Figures(percentile(main, 0.5), percentile(main, 0.99), max(main), lat[b"q"][0],
                   len(main), {}, statistics.fmean(main))


def _median(rounds: list[Figures]) -> Figures:
    med = statistics.median
    keys = set.intersection(*(set(f.extra) for f in rounds))
    return Figures(med(f.p50 for f in rounds), med(f.p99 for f in rounds),
                   med(f.max for f in rounds), med(f.quiet for f in rounds),
                   int(med(f.jobs for f in rounds)),
                   {k: med(f.extra[k] for f in rounds) for k in sorted(keys)},
                   med(f.mean for f in rounds))


def _row(name: str, f: Figures) -> str:
    return (f"{name:28} {f.p50:8.2f} {f.p99:8.2f} {f.max:8.2f} {f.mean:9.2f} {f.quiet:12.2f} "
            f"{f.jobs:7d}")


HEADER = (f"{'':28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>9} "
          f"{'after quiet':>12} {'jobs':>7}")
LABELS = {"jobpipe": "jobpipe", "celery": "celery prefork (Redis)",
          "kafka": "bare Kafka floor"}


def report(results: dict[str, list[Figures]], load: Load, out: Path | None) -> None:
    """Print the medians, ratios inside the run, and the jobpipe breakdown."""
    medians = {name: _median(rounds) for name, rounds in results.items()}
    click.echo(f"\nmedians of {len(next(iter(results.values())))} rounds, {load.rate} jobs/s "
               f"for {load.duration_s:g} s after {load.warmup_s:g} s of warm-up; "
               f"'after quiet' = one job after {load.quiet_s:g} s of nothing")
    click.echo(HEADER)
    for name, f in medians.items():
        click.echo(_row(LABELS[name], f))
    jp = medians.get("jobpipe")
    if jp is not None:
        for other in ("celery", "kafka"):
            if other in medians:
                o = medians[other]
                # three significant digits: at the busy hour Celery is hundreds of times slower
                click.echo(f"jobpipe / {LABELS[other]}: p50 {jp.p50 / o.p50:.3g}x, "
                           f"p99 {jp.p99 / o.p99:.3g}x, mean {jp.mean / o.mean:.3g}x, "
                           f"after quiet {jp.quiet / o.quiet:.3g}x")
        e = jp.extra
        if "to_kafka_p50" in e:
            click.echo(f"jobpipe split at the Kafka write (ms clock): enqueue -> Kafka p50 "
                       f"{e['to_kafka_p50']:.1f} p99 {e['to_kafka_p99']:.1f}; Kafka -> handler "
                       f"p50 {e['from_kafka_p50']:.1f} p99 {e['from_kafka_p99']:.1f}")
        if "cpu_us_per_job_bridge" in e:
            click.echo(f"CPU per job under the load: bridge {e['cpu_us_per_job_bridge']:.0f} µs, "
                       f"worker {e['cpu_us_per_job_worker']:.0f} µs")
        if "idle_cpu_bridge" in e:
            click.echo(f"idle CPU over {load.idle_cpu_s:g} s: bridge "
                       f"{100 * e['idle_cpu_bridge']:.1f}% of a core, worker "
                       f"{100 * e['idle_cpu_worker']:.1f}%")
    if out is not None:
        body = {name: {"rounds": [f.__dict__ for f in rounds], "median": medians[name].__dict__}
                for name, rounds in results.items()}
        out.write_bytes(orjson.dumps({"load": load.__dict__, "systems": body},
                                     option=orjson.OPT_INDENT_2))


@click.command()
@click.option("--rate", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--duration", "duration_s", type=click.FloatRange(1), default=15.0,
              show_default=True)
@click.option("--warmup", "warmup_s", type=click.FloatRange(0), default=3.0, show_default=True)
@click.option("--quiet", "quiet_s", type=click.FloatRange(0), default=3.0, show_default=True,
              help="Seconds of nothing before the single after-quiet job.")
@click.option("--idle-cpu", "idle_cpu_s", type=click.FloatRange(0), default=10.0,
              show_default=True, help="Seconds over which the idle bridge's and worker's CPU "
              "is measured (0: skip).")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--systems", default=",".join(SYSTEMS), show_default=True,
              help="Comma-separated subset of jobpipe,celery,kafka.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every round's figures here.")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the bridge's, workers' and Celery's logs here, a file per round, "
                   "with each round's config (default: a temporary folder, removed).")
@click.pass_obj
def latency(obj: CliContext, rate: int, duration_s: float, warmup_s: float, quiet_s: float,
            idle_cpu_s: float, runs: int, systems: str, json_out: Path | None,
            log_dir: Path | None) -> None:
    """Latency at a rate (p50/p99/max/mean, one job after quiet): jobpipe, Celery, bare Kafka."""
    wanted = [s.strip() for s in systems.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SYSTEMS))
    if unknown or not wanted:
        raise click.BadParameter(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}",
                                 param_hint="--systems")
    settings = obj.settings()
    load = Load(rate, warmup_s, duration_s, quiet_s, idle_cpu_s)
    results: dict[str, list[Figures]] = {name: [] for name in wanted}
    with tempfile.TemporaryDirectory(prefix="jobpipe-bench-latency-") as tmp:
        logs = log_dir or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for i in range(runs):
            for name in wanted:
                if name == "jobpipe":
                    figures = run_jobpipe(settings, load, logs)
                elif name == "celery":
                    figures = run_celery(settings, load, logs)
                else:
                    figures = run_kafka_floor(settings, load)
                results[name].append(figures)
                click.echo(f"round {i + 1}  " + _row(LABELS[name], figures))
    report(results, load, json_out)

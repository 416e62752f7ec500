"""``jobpipe loadtest`` (open-loop load, per-stage latency, report) and ``jobpipe capacity``."""

from __future__ import annotations

import json
import shlex
import sys
import time
import uuid
from pathlib import Path

import click

from jobpipe.cli.context import CliContext
from jobpipe.errors import ConfigError
from jobpipe.topology import DEFAULT_IDEMPOTENCY_TTL_S
from loadtest.capacity import DEFAULT_PRIMARY_MEMORY_GB


def _namespace() -> str:
    return f"lt{time.strftime('%H%M%S')}{uuid.uuid4().hex[:4]}"


@click.command()
@click.option("--rate", type=float, help="Jobs per second, constant (default 2000).")
@click.option("--ramp", help="FROM:TO:STEP jobs/s, one step per --step-s (saturation search).")
@click.option("--step-s", type=float, default=10.0, show_default=True, help="Ramp step length.")
@click.option("--duration", "duration_s", type=float, default=20.0, show_default=True,
              help="Seconds of load at a constant --rate.")
@click.option("--payload-bytes", type=int, default=100, show_default=True)
@click.option("--queues", default="loadtest", show_default=True, help="Comma-separated.")
@click.option("--tenants", type=int, default=0, show_default=True,
              help="Jobs carry one of N tenants (the queues become fair queues).")
@click.option("--tenant-skew", type=float, default=1.0, show_default=True,
              help="Zipf exponent of the tenant mix (0 = uniform).")
@click.option("--handler-ms", default="0", show_default=True, help="0, 5 or exp:5.")
@click.option("--producers", type=int, default=1, show_default=True)
@click.option("--bridges", type=int, default=1, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--partitions", type=int, default=6, show_default=True)
@click.option("--track-status", is_flag=True,
              help="The queues keep a state record per job (to measure what it costs).")
@click.option("--p99-target-ms", type=float, default=100.0, show_default=True)
@click.option("--report-dir", type=click.Path(path_type=Path),
              help="A new or empty folder. Default: reports/<timestamp>.")
@click.option("--kill", help="kill -9 and restart during the run: bridge, worker, kafka, "
              "redis; on a private Kafka of 3 brokers, kafka-broker (fail-over of the leader "
              "of the queue's partition 0); on a private Redis Cluster, redis-primary "
              "(fail-over of the queue's primary) or redis-reshard (its slot moves). "
              "Comma-separated: taken in turn; joined by '+': killed at once "
              "(kafka-broker+redis-primary).")
@click.option("--every", "every_s", type=float, default=10.0, show_default=True,
              help="Seconds between kills.")
@click.option("--stack-ports", metavar="REDIS:KAFKA",
              help="First ports of the private stack a --kill of a service starts "
              "(default: free ones).")
@click.option("--soak", is_flag=True, help="Report RSS and open fds of each process.")
@click.option("--peers", default="", help="Also run the workload through: celery.")
@click.option("--drain-timeout-s", type=float, default=60.0, show_default=True)
@click.pass_obj
def loadtest(obj: CliContext, rate: float | None, ramp: str | None, step_s: float,
             duration_s: float, payload_bytes: int, queues: str, tenants: int,
             tenant_skew: float, handler_ms: str, producers: int, bridges: int, workers: int,
             partitions: int, track_status: bool, p99_target_ms: float,
             report_dir: Path | None, kill: str | None, every_s: float,
             stack_ports: str | None, soak: bool, peers: str, drain_timeout_s: float) -> None:
    """Drive an open-loop load through the pipeline and write a report with plots."""
    from loadtest.orchestrate import run_loadtest
    from loadtest.run_plan import RunPlan, parse_stack_ports
    from loadtest.schedule import parse_ramp

    if rate is not None and ramp is not None:
        raise ConfigError("give --rate or --ramp, not both")
    if ramp is not None:
        rates, step = tuple(parse_ramp(ramp)), step_s
    else:
        rates, step = ((rate if rate is not None else 2000.0),), duration_s
    if report_dir is not None and report_dir.is_dir() and any(report_dir.iterdir()):
        # Its ledger and interval files would be read again with this run's.
        raise ConfigError(f"--report-dir {report_dir}: not empty (an earlier run's files "
                          "would be counted with this one); give a new or empty folder")
    redis_port, kafka_port = parse_stack_ports(stack_ports) if stack_ports else (None, None)
    folder = report_dir or Path("reports") / time.strftime("%Y%m%d-%H%M%S")
    plan = RunPlan(
        run_dir=str(folder.resolve()), rates=rates, step_s=step, payload_bytes=payload_bytes,
        queues=tuple(q for q in queues.split(",") if q), tenants=tenants,
        tenant_skew=tenant_skew, handler_ms=handler_ms, producers=producers, bridges=bridges,
        workers=workers, partitions=partitions, track_status=track_status,
        p99_target_ms=p99_target_ms, kill=kill,
        kill_every_s=every_s, stack_redis_port=redis_port, stack_kafka_port=kafka_port,
        soak=soak, peers=tuple(p for p in peers.split(",") if p),
        namespace=_namespace(), drain_timeout_s=drain_timeout_s)
    command = "jobpipe " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = run_loadtest(plan, config_path=obj.config_path if obj else None, command=command)
    if report.get("ledger", {}).get("lost"):
        raise click.exceptions.Exit(2)


@click.command()
@click.option("--target", required=True, help="Jobs per second to plan for, e.g. 100000/s.")
@click.option("--p99-ms", type=float, default=50.0, show_default=True)
@click.option("--headroom", type=float, default=0.4, show_default=True,
              help="Spare fraction of each piece's measured capacity.")
@click.option("--from-report", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A load-test report folder to take per-process figures from.")
@click.option("--from-scaleout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A `jobpipe bench scaleout --json` file: its per-primary intake rate.")
@click.option("--redis-primary-per-s", type=float,
              help="Jobs/s one Redis primary carries, measured (overrides --from-scaleout).")
@click.option("--idempotency-ttl-s", type=click.FloatRange(min=0),
              default=DEFAULT_IDEMPOTENCY_TTL_S, show_default=True,
              help="Seconds the queue keeps done markers (its idempotency_ttl_s; "
                   "0 = no markers).")
@click.option("--primary-memory-gb", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_PRIMARY_MEMORY_GB, show_default=True,
              help="Memory of one Redis primary: a warning when one queue's done markers "
                   "would fill more than (1 - headroom) of it.")
def capacity(target: str, p99_ms: float, headroom: float, from_report: Path | None,
             from_scaleout: Path | None, redis_primary_per_s: float | None,
             idempotency_ttl_s: float, primary_memory_gb: float) -> None:
    """Plan bridges, workers, partitions, Redis shards and Kafka brokers for a target,
    and the Redis memory and AOF traffic that come with it."""
    from rich.console import Console
    from rich.table import Table

    from loadtest.capacity import (
        Measured,
        measured_from_report,
        parse_target,
        plan_capacity,
        redis_primary_from_scaleout,
        with_redis_primary,
    )
    from loadtest.report import read_report

    measured = Measured()
    if from_report is not None:
        try:
            data = read_report(from_report)
        except FileNotFoundError:
            raise ConfigError(f"--from-report {from_report}: no report.json there") from None
        measured = measured_from_report(data, str(from_report))
    if redis_primary_per_s is not None:
        measured = with_redis_primary(measured, redis_primary_per_s, "--redis-primary-per-s")
    elif from_scaleout is not None:
        try:
            bench = json.loads(from_scaleout.read_text())
        except ValueError as exc:
            raise ConfigError(f"--from-scaleout {from_scaleout}: not JSON ({exc})") from None
        measured = with_redis_primary(
            measured, redis_primary_from_scaleout(bench, str(from_scaleout)),
            f"bench scaleout {from_scaleout}")
    plan = plan_capacity(parse_target(target), p99_ms, measured, headroom,
                         idempotency_ttl_s=idempotency_ttl_s,
                         primary_memory_gb=primary_memory_gb)
    console = Console()
    table = Table(title=f"capacity for {plan.target_per_s:,.0f} jobs/s, p99 <= {p99_ms:g} ms")
    table.add_column("piece")
    table.add_column("plan", justify="right")
    for label, value in (("producer processes", plan.producers),
                         ("bridge processes", plan.bridges),
                         ("worker processes", plan.workers),
                         ("partitions per queue", plan.partitions),
                         ("Redis shards (primaries)", plan.redis_shards),
                         ("Kafka brokers", plan.kafka_brokers)):
        table.add_row(label, f"{value:,}")
    table.add_row("Redis memory, done markers", f"{plan.marker_memory_gb:,.1f} GB")
    table.add_row("Redis AOF written", f"{plan.aof_mb_per_s:,.1f} MB/s")
    console.print(table)
    console.print("[bold]assumptions[/]")
    for line in plan.assumptions:
        console.print(f"  - {line}")
    for line in plan.warnings:
        console.print(f"[yellow]  ! {line}[/]")

"""Run a load test end to end: services, processes, schedule, drain, ledger, report.

    stack = open_stack(plan)             # configured services, dev stack or a private one
    workers, bridges, producers started  # as subprocesses, by PID
    producers ready -> "go" at one start time
    live loop: interval logs + backlog samples -> live view
    drain until every accepted job ran (or the drain timeout)
    stop bridges and workers, check the ledger, run peers, write the report
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
from rich.console import Console

from jobpipe import names
from jobpipe.connections import redis_client
from jobpipe.settings import Settings
from loadtest.aof import aof_line
from loadtest.assemble import assemble, peer_summary
from loadtest.backlog_sampler import BacklogSampler
from loadtest.chaos import ChaosMonkey, kill_offsets_s
from loadtest.cpu import CpuSampler, counts_reaped_children, service_pids
from loadtest.cpu_report import RUNNER, cpu_section
from loadtest.drive import Watch, child_env, drive
from loadtest.failover import summarize_handovers, worker_handovers
from loadtest.ledger import check_ledger, dead_lettered_ids_from_kafka
from loadtest.partition_trace import read_traces
from loadtest.processes import Fleet, jobpipe_argv, python_argv, read_proc_usage
from loadtest.report import cpu_summary_table, summary_table, verdict_line, write_report
from loadtest.run_plan import LEDGER_DIR, LEDGER_SYNC_ENV, RUN_DIR_ENV, RunPlan
from loadtest.service_choice import RunStack, cleanup, open_stack
from loadtest.start_signal import give_go, wait_ready
from loadtest.workload import job_args, padding

log = logging.getLogger(__name__)

def workers_joined(settings: Any) -> Any:
    """A check that the run's worker group has members with partitions."""
    from confluent_kafka.admin import AdminClient

    from jobpipe.connections import kafka_admin_config

    admin = AdminClient(kafka_admin_config(settings.kafka))
    group = names.group_id(settings.namespace, "workers")

    def check() -> bool:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
        except Exception:
            return False
        return any(m.assignment.topic_partitions for m in desc.members)

    return check


def worker_argv(queues: str) -> list[str]:
    """``jobpipe worker loadtest.tasks:app`` on the given queues."""
    return jobpipe_argv("worker", "loadtest.tasks:app", "--queues", queues)


def fleet_pids(fleet: Fleet) -> dict[str, int | None]:
    """Every process of the run by name, with its current PID (None once stopped)."""
    return {m.name: m.pid for m in fleet.members}


def stack_pids(devstack: Any) -> dict[str, int | None]:
    """Redis (each node of a Redis Cluster) and each Kafka node of a dev stack, by
    their PID files."""
    return {**devstack.redis_pids,
            **{f"kafka-{n}": pid for n, pid in devstack.kafka_pids.items()}}


def local_service_pids(settings: Any) -> dict[str, int]:
    """PIDs of Redis and each Kafka broker when they listen on this machine."""
    from urllib.parse import urlsplit

    local = ("127.0.0.1", "localhost", "::1")
    redis = urlsplit(settings.redis.url)
    redis_ports: dict[str, int] = {}
    if settings.redis.cluster:  # every node the cluster knows of (CLUSTER NODES)
        client = redis_client(settings.redis)
        try:  # not the client's slot map: a replica may not be in it yet
            known: dict[str, Any] = cast(Any, client).execute_command("CLUSTER NODES")
        finally:
            client.close()
        for address in known:
            host, _, port = address.rpartition(":")
            if host in local and port.isdigit():
                redis_ports[f"redis-{port}"] = int(port)
    elif redis.hostname in local:
        redis_ports = {"redis": redis.port or 6379}
    kafka_ports = []
    for address in settings.kafka.bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        if host.strip("[]") in local and port.isdigit():
            kafka_ports.append(int(port))
    return service_pids(redis_ports, kafka_ports)


def worker_env(settings: Settings, index: int) -> dict[str, str]:
    """Worker ``index``'s own static member name, when the settings give one
    (``worker.instance_id``): a restart then comes back as the same member. Without
    one a worker claims its name on this host (``consumers.member_name``), and a
    restart claims the name its killed predecessor held: nothing to pass."""
    instance_id = settings.worker.process(index).instance_id
    return {} if instance_id is None else {"JOBPIPE_WORKER_INSTANCE_ID": instance_id}


def soak_usage(fleet: Fleet) -> dict[str, dict[str, int | None]]:
    """RSS and open fds of every running process of the run."""
    return {m.name: {"pid": m.pid, **read_proc_usage(m.pid)}
            for m in fleet.members if m.pid is not None}


def run_jobpipe(plan: RunPlan, stack: RunStack, console: Console, command: str,
                started_at: str) -> dict[str, Any]:
    """The jobpipe part of a run: start everything, drive the schedule, build the report."""
    run_dir = Path(plan.run_dir)
    (run_dir / LEDGER_DIR).mkdir(parents=True, exist_ok=True)
    plan_path = run_dir / "plan.json"
    plan_path.write_bytes(orjson.dumps(plan.to_dict(), option=orjson.OPT_INDENT_2))
    env = {**child_env(), **stack.env, RUN_DIR_ENV: str(run_dir),
           LEDGER_SYNC_ENV: "1" if "worker" in plan.kill_targets else "0"}
    fleet = Fleet(run_dir, env)
    queues = ",".join(plan.queues)
    try:
        for i in range(plan.workers):
            fleet.launch("worker", i, worker_argv(queues), worker_env(stack.settings, i))
        for i in range(plan.bridges):
            fleet.launch("bridge", i, jobpipe_argv("bridge", "--queues", queues))
        for i in range(plan.producers):
            fleet.launch("producer", i, python_argv("loadtest.sender", str(plan_path), str(i)))
        console.print(f"[dim]waiting for {plan.workers} workers to join and "
                      f"{plan.producers} producers to be ready...[/]")
        wait_ready(fleet, run_dir, plan.producers, "producer", workers_joined(stack.settings))
        soak_start = soak_usage(fleet) if plan.soak else {}
        start_ns = give_go(run_dir)
        start_s = start_ns / 1e9
        sampler = BacklogSampler(stack.settings, start_s)
        chaos = None
        if plan.kill:
            offsets = kill_offsets_s(plan.schedule().duration_s, plan.kill_every_s)
            chaos = ChaosMonkey(plan.kill_steps, fleet, stack.devstack, start_s, offsets,
                                plan.queues[0], plan.namespace)
        watch = Watch(run_dir, start_s, "worker", "producer")
        services = local_service_pids(stack.settings)

        def measured() -> dict[str, int | None]:
            # A stack this run owns is asked each time: chaos restarts change its PIDs.
            owned = stack_pids(stack.devstack) if stack.devstack is not None else services
            return {**fleet_pids(fleet), **owned, RUNNER: os.getpid()}

        cpu = CpuSampler(measured, start_s, with_children=counts_reaped_children)
        try:
            drained = drive(plan, fleet, watch, console, sampler=sampler, chaos=chaos,
                            phase="jobpipe", cpu=cpu)
        finally:
            kills = chaos.stop() if chaos is not None else []
            backlog = sampler.stop()
            cpu_series = cpu.stop()
        soak_end = soak_usage(fleet) if plan.soak else {}
        time.sleep(1.5)  # let the last interval lines and ledger buffers land
        fleet.stop(["bridge", "worker"])
        watch.poll()
    finally:
        fleet.stop()
    dead = dead_lettered_ids_from_kafka(stack.settings, list(plan.queues))
    ledger = check_ledger(run_dir / LEDGER_DIR, dead)
    seconds = max(math.ceil(time.time() - start_s), 1)
    soak = None
    if plan.soak:
        soak = {"processes": [
            {"name": name, "pid": start["pid"], "rss_kb_start": start["rss_kb"],
             "rss_kb_end": soak_end.get(name, {}).get("rss_kb"), "fds_start": start["fds"],
             "fds_end": soak_end.get(name, {}).get("fds")} for name, start in soak_start.items()]}
    sample = job_args(start_ns, padding(plan.payload_bytes), None)
    job_bytes = len(orjson.dumps(sample)) + 200  # + the envelope's fixed fields
    report = assemble(plan, workers=watch.workers, producers=watch.producers, backlog=backlog,
                      ledger=ledger.to_dict(), started_at=started_at, command=command,
                      kills=kills, soak=soak, seconds=seconds, job_bytes=job_bytes)
    report["totals"]["drained"] = drained
    missing = [name for name in ("redis", "kafka-1") if name not in cpu_series.cpu_s]
    report["cpu"] = cpu_section(plan, cpu_series, watch.workers, watch.producers, missing)
    if "worker" in plan.kill_targets:
        report["chaos"]["handovers"] = summarize_handovers(
            worker_handovers(read_traces(run_dir), start_ns // 1_000_000, kills))
    if not drained:
        redis_left, kafka_left = backlog.last()
        report["notes"].insert(0, f"The drain timeout ({plan.drain_timeout_s:g} s) passed with "
                               f"{redis_left} jobs still in Redis and {kafka_left} in Kafka: "
                               "jobs counted lost may only be late. Rerun with a longer "
                               "--drain-timeout-s to tell.")
    return report


def run_loadtest(plan: RunPlan, *, config_path: Path | None = None, command: str = "",
                 console: Console | None = None) -> dict[str, Any]:
    """Run the whole load test described by ``plan``; write and return its report.

    Raises:
        JobpipeError: services unavailable, a process failed to start, bad options.
    """
    console = console or Console()
    run_dir = Path(plan.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stack = open_stack(plan, config_path)
    try:
        report = run_jobpipe(plan, stack, console, command, started_at)
        report["peers"] = {}
        for peer in plan.peers:
            from loadtest.peers.celery_peer import run_celery_peer

            workers, seconds = run_celery_peer(plan, stack, console)
            report["peers"][peer] = peer_summary(peer, workers, plan.schedule().duration_s,
                                                 seconds, report)
            report.setdefault("cdf", {})[f"{peer} e2e"] = report["peers"][peer]["cdf"]
    finally:
        cleanup(stack)
    json_path, html_path = write_report(run_dir, report)
    head, stages = summary_table(report)
    console.print(head)
    console.print(stages)
    cpu_table = cpu_summary_table(report)
    if cpu_table is not None:
        console.print(cpu_table)
    verdict = verdict_line(report)
    if verdict is not None:
        console.print(verdict)
    aof = aof_line(report.get("redis_aof"))
    if aof is not None:
        console.print(aof, markup=False)
    console.print(f"report: {html_path} and {json_path}")
    return report

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
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live

from jobpipe import names
from jobpipe.errors import JobpipeError
from loadtest.assemble import assemble, peer_summary
from loadtest.backlog import BacklogSampler
from loadtest.chaos import ChaosMonkey, kill_offsets_s
from loadtest.ledger import check_ledger, dead_lettered_ids_from_kafka
from loadtest.live import Progress, render
from loadtest.plan import LEDGER_DIR, LEDGER_SYNC_ENV, RUN_DIR_ENV, RunPlan
from loadtest.processes import Fleet, jobpipe_argv, python_argv, read_proc_usage
from loadtest.recording import IntervalReader
from loadtest.report import summary_table, write_report
from loadtest.sender import GO_FILE, SYNC_DIR
from loadtest.series import Aggregate
from loadtest.stack import RunStack, cleanup, open_stack
from loadtest.workload import job_args, padding

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 90.0
REFRESH_S = 0.5
RECENT_S = 5


def wait_ready(fleet: Fleet, run_dir: Path, producers: int, role: str,
               extra: Any = None, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until every producer said it is ready and ``extra()`` (if given) is true.

    Raises:
        JobpipeError: a process exited early, or the timeout passed.
    """
    deadline = time.monotonic() + timeout_s
    sync = run_dir / SYNC_DIR
    while True:
        dead = [m for m in fleet.members if m.proc is not None and m.proc.poll() is not None]
        if dead:
            tail = dead[0].log_path.read_text(errors="replace")[-1500:]
            raise JobpipeError(f"{dead[0].name} exited before the run started; its log "
                               f"ends with:\n{tail}")
        ready = len(list(sync.glob(f"ready-{role}-*"))) if sync.exists() else 0
        if ready >= producers and (extra is None or extra()):
            return
        if time.monotonic() > deadline:
            raise JobpipeError(f"processes not ready after {timeout_s}s (producers ready: "
                               f"{ready}/{producers}); see {run_dir / 'logs'}")
        time.sleep(0.2)


def give_go(run_dir: Path, lead_s: float = 0.3) -> int:
    """Write the common start time (atomically); return it in ns.

    The start is a whole second of the wall clock, as are the ends of every
    process's recording intervals, so per-second buckets hold whole seconds.
    """
    start_ns = math.ceil(time.time() + lead_s) * 1_000_000_000
    tmp = run_dir / SYNC_DIR / f"{GO_FILE}.tmp"
    tmp.write_text(str(start_ns))
    os.replace(tmp, run_dir / SYNC_DIR / GO_FILE)
    return start_ns


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


def child_env() -> dict[str, str]:
    """This environment, with the source root first on ``PYTHONPATH``, so the
    processes a run starts import the very code the runner runs."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


def worker_argv(queues: str) -> list[str]:
    """``jobpipe worker loadtest.tasks:app`` on the given queues."""
    return jobpipe_argv("worker", "loadtest.tasks:app", "--queues", queues)


def soak_usage(fleet: Fleet) -> dict[str, dict[str, int | None]]:
    """RSS and open fds of every running process of the run."""
    return {m.name: {"pid": m.pid, **read_proc_usage(m.pid)}
            for m in fleet.members if m.pid is not None}


class Watch:
    """Folds interval lines into aggregates and draws the live view."""

    def __init__(self, run_dir: Path, start_s: float, worker_role: str, producer_role: str):
        self.reader = IntervalReader(run_dir)
        self.workers = Aggregate(start_s, frozenset({worker_role}))
        self.producers = Aggregate(start_s, frozenset({producer_role}))
        self.start_s = start_s

    def poll(self) -> None:
        lines = self.reader.read_new()
        self.workers.add(lines)
        self.producers.add(lines)

    def progress(self, plan: RunPlan, backlog: tuple[int, int], kills: int,
                 phase: str) -> Progress:
        elapsed = time.time() - self.start_s
        now = max(0, math.floor(elapsed) - 1)
        first = max(0, now - RECENT_S)
        span = max(1, now - first)
        window = self.workers.window(first, now + 1)
        p99 = window.get_value_at_percentile(99) / 1000 if window.get_total_count() else None
        schedule = plan.schedule()
        offered = schedule.step_at(elapsed).rate_per_s if elapsed < schedule.duration_s else 0.0
        return Progress(elapsed, schedule.duration_s, offered,
                        self.producers.count_between("sent", first, now) / span,
                        self.workers.count_between("done", first, now) / span,
                        self.producers.counts.get("sent", 0), self.workers.counts.get("done", 0),
                        backlog[0], backlog[1], p99, kills, phase)


def drive(plan: RunPlan, fleet: Fleet, watch: Watch, console: Console, *,
          sampler: BacklogSampler | None, chaos: ChaosMonkey | None, phase: str) -> bool:
    """Refresh the live view until the producers finished and the backlog drained.

    Returns:
        Whether it drained (False: the drain timeout passed with jobs waiting).
    """
    duration_s = plan.schedule().duration_s
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while True:
            watch.poll()
            backlog = sampler.last() if sampler is not None else (0, 0)
            kills = len(chaos.kills) if chaos is not None else 0
            producing = any(m.pid is not None for m in fleet.of_kind(phase_producer(phase)))
            elapsed = time.time() - watch.start_s
            sent = watch.producers.counts.get("sent", 0)
            done = watch.workers.counts.get("done", 0)
            label = "sending" if producing else "draining"
            live.update(render(watch.progress(plan, backlog, kills, f"{phase}: {label}")))
            if not producing and elapsed > duration_s:
                # A worker killed with -9 loses its last second of counts (never
                # its ledger lines), so with kills an empty backlog decides alone.
                counted = done >= sent or kills > 0
                drained = counted and (sampler is None or backlog == (0, 0))
                if drained or elapsed > duration_s + plan.drain_timeout_s:
                    return drained
            time.sleep(REFRESH_S)


def phase_producer(phase: str) -> str:
    """The producer kind of a phase (``producer`` or ``celery-producer``)."""
    return "producer" if phase == "jobpipe" else f"{phase}-producer"


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
            fleet.launch("worker", i, worker_argv(queues))
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
            chaos = ChaosMonkey(plan.kill_targets, fleet, stack.devstack, start_s, offsets)
        watch = Watch(run_dir, start_s, "worker", "producer")
        try:
            drained = drive(plan, fleet, watch, console, sampler=sampler, chaos=chaos,
                            phase="jobpipe")
        finally:
            kills = chaos.stop() if chaos is not None else []
            backlog = sampler.stop()
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
    console.print(f"report: {html_path} and {json_path}")
    return report

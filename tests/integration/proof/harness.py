"""A whole pipeline on a private stack, run as real processes, counted by the ledger.

The test process produces (recording what was accepted); ``jobpipe bridge`` and
``jobpipe worker tests.integration.proof.ledger_tasks`` run as subprocesses
(recording every execution) and are killed, frozen and restarted by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.devstack.ports import free_port
from jobpipe.errors import IntakeUnavailable, QueueFull
from jobpipe.settings import Settings, load_settings
from jobpipe.stats import take_snapshot
from loadtest.ledger import ACCEPTED, LedgerReport, LedgerWriter, check_ledger, read_role
from tests.private_stack import PrivateStack

ROOT = Path(__file__).resolve().parents[3]
JOBPIPE = [sys.executable, "-m", "jobpipe"]
TASKS = "tests.integration.proof.ledger_tasks"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    raise TypeError(type(value))


def write_toml(path: Path, tree: dict[str, Any]) -> None:
    """Write a (two-level) settings tree as TOML."""
    lines = [f"{k} = {_toml(v)}" for k, v in tree.items() if not isinstance(v, dict)]
    for section, body in tree.items():
        if not isinstance(body, dict):
            continue
        if section == "queues":
            for qname, qbody in body.items():
                lines.append(f"\n[queues.{qname}]")
                lines += [f"{k} = {_toml(v)}" for k, v in qbody.items()]
            continue
        lines.append(f"\n[{section}]")
        lines += [f"{k} = {_toml(v)}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Figures:
    """What a scenario prints and docs/reliability.md records."""

    scenario: str
    report: LedgerReport
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return f"[{self.scenario}] {self.report.summary()} {extra}".rstrip()


class Pipeline:
    """Settings, ledger and processes of one chaos test."""

    def __init__(self, root: Path, stack: PrivateStack, namespace: str,
                 queue: dict[str, Any] | None = None, **sections: dict[str, Any]) -> None:
        self.root = root
        self.stack = stack
        self.ledger_dir = root / "ledger"
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "jobpipe.toml"
        tree: dict[str, Any] = {
            "namespace": namespace,
            "redis": {"url": stack.redis_url},
            "kafka": {"bootstrap": stack.kafka_bootstrap},
            "bridge": {"heartbeat_interval_s": 0.5, "heartbeat_timeout_s": 3.0,
                       "log_interval_s": 2.0},
            "worker": {"concurrency": 32, "commit_interval_s": 0.5, "group_stuck_s": 30.0,
                       "shutdown_timeout_s": 5.0, "revoke_timeout_s": 3.0},
            "queues": {"default": {"partitions": 4, "shards": 2, "retry_tiers_s": [1, 2],
                                   **(queue or {})}},
        }
        for name, body in sections.items():
            tree.setdefault(name, {}).update(body)
        write_toml(self.config_path, tree)
        self.settings: Settings = load_settings(self.config_path, environ={})
        self.procs: list[subprocess.Popen[bytes]] = []
        self.metrics_ports: dict[int, int] = {}  # worker pid -> its /metrics port
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBPIPE_")},
                    "JOBPIPE_CONFIG": str(self.config_path),
                    "PROOF_LEDGER_DIR": str(self.ledger_dir),
                    "PROOF_OUTAGE_FILE": str(root / "outage"),
                    "PYTHONPATH": str(ROOT)}

    def apply_topics(self) -> None:
        apply_topics(self.settings, timeout_s=60)

    # --- processes -------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}-{len(self.procs)}.log").open("ab")
        command = [*JOBPIPE, *args]
        proc = subprocess.Popen(command, env=self.env, cwd=self.root,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start_bridge(self, *extra: str) -> subprocess.Popen[bytes]:
        return self._spawn("bridge", ["bridge", *extra])

    def start_worker(self, *extra: str, module: str = TASKS) -> subprocess.Popen[bytes]:
        port = free_port()
        proc = self._spawn("worker", ["worker", module, "--metrics-port", str(port), *extra])
        self.metrics_ports[proc.pid] = port
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9 by PID (and SIGCONT first, in case it was frozen)."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def skipped_duplicates(self) -> int:
        """Redeliveries of completed jobs that live workers skipped (their metrics)."""
        return self.worker_metric("jobpipe_jobs_duplicate_skipped_total")

    def worker_metric(self, name: str) -> int:
        """A counter summed over the live workers' /metrics (killed ones took theirs along)."""
        total = 0.0
        for proc in self.procs:
            port = self.metrics_ports.get(proc.pid)
            if port is None or proc.poll() is not None:
                continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith(name + "{"))
        return int(total)

    def logs(self) -> str:
        """The tail of every process log, for failure messages."""
        out = []
        for path in sorted(self.root.glob("*.log")):
            out.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    # --- producing and waiting -------------------------------------------------------

    def produce(self, total: int, batch: int = 500, rate_per_s: float | None = None,
                stop: threading.Event | None = None, **options: Any) -> dict[str, int]:
        """Enqueue ``total`` jobs, recording the accepted ids; returns error counts.

        A batch refused with QueueFull or IntakeUnavailable is not accepted: it is
        counted and retried with new ids after a short pause.
        """
        from ingest import Producer

        errors = {"queue_full": 0, "unavailable": 0}
        sent = 0
        started = time.monotonic()
        with Producer(self.settings) as producer, LedgerWriter(self.ledger_dir, ACCEPTED) as led:
            while sent < total and not (stop is not None and stop.is_set()):
                n = min(batch, total - sent)
                try:
                    ids = producer.enqueue_many("default", "record",
                                                [{"n": sent + i} for i in range(n)], **options)
                except QueueFull:
                    errors["queue_full"] += 1
                    time.sleep(0.05)
                    continue
                except IntakeUnavailable:
                    errors["unavailable"] += 1
                    time.sleep(0.05)
                    continue
                led.record(ids)
                sent += n
                if rate_per_s:
                    ahead_s = sent / rate_per_s - (time.monotonic() - started)
                    if ahead_s > 0:
                        time.sleep(ahead_s)
        return errors

    def accepted(self) -> int:
        return len(read_role(self.ledger_dir, ACCEPTED)[0])

    def report(self, dead_lettered: bool = False) -> LedgerReport:
        dead: set[str] = set()
        if dead_lettered:
            from loadtest.ledger import dead_lettered_ids_from_kafka

            dead = dead_lettered_ids_from_kafka(self.settings)
        return check_ledger(self.ledger_dir, dead)

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n"
                                     + self.logs())
            for proc in self.procs:
                if proc.poll() not in (None, -signal.SIGKILL, -signal.SIGTERM, 0):
                    raise AssertionError(f"process {proc.args} exited with {proc.returncode}"
                                         "\n" + self.logs())
            time.sleep(0.2)

    def settled(self) -> bool:
        """Every stage caught up: nothing left in Redis (ready, delayed, in flight,
        parked) and the workers' committed offsets at the end of the main topics."""
        group = names.group_id(self.settings.namespace, "workers")
        return all(q.backlog == 0 and q.group_lag(group) == 0
                   for q in take_snapshot(self.settings).queues)

    def wait_all_done(self, timeout_s: float = 120.0, dead_lettered: bool = False) -> LedgerReport:
        """Wait until every accepted job was executed (or dead-lettered)."""
        self.wait_for(lambda: self.report().lost == 0 or (
            dead_lettered and self.report(dead_lettered=True).lost == 0),
            timeout_s, "every accepted job to be executed")
        return self.report(dead_lettered=dead_lettered)


def run_in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` in a thread; its result (or exception) lands in the dict."""
    result: dict[str, Any] = {}

    def wrapper() -> None:
        try:
            result["value"] = target()
        except BaseException as exc:  # handed to the test, re-raised there
            result["error"] = exc

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    return thread, result


def wait_quiet(pipeline: Pipeline, stable_s: float, timeout_s: float) -> LedgerReport:
    """Wait until the executed count stops moving for ``stable_s`` (for runs that may
    legitimately end with jobs lost, where "all done" never comes)."""
    deadline = time.monotonic() + timeout_s
    last = -1
    since = time.monotonic()
    while time.monotonic() < deadline:
        report = pipeline.report()
        if report.lost == 0:
            return report
        if report.executions != last:
            last, since = report.executions, time.monotonic()
        elif time.monotonic() - since >= stable_s:
            return report
        time.sleep(0.2)
    return pipeline.report()

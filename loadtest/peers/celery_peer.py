"""Celery, side by side: the same open-loop no-op workload through Celery + Redis.

Run in the same ``jobpipe loadtest --peers celery`` run, after jobpipe's part,
on the same machine and the same Redis server (its own database, 15, so its
keys never mix with jobpipe's). Producers are the same open-loop sender
processes, calling ``apply_async`` per job (Celery has no batch publish); the
worker is ``celery worker`` with the prefork pool, one child per jobpipe
worker process, ``task_acks_late`` on (at-least-once, as jobpipe), JSON
serialization. Latency is measured exactly as for jobpipe: from the intended
send time carried in the job's args to the end of the task.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from celery import Celery
from rich.console import Console

from loadtest.recording import IntervalLog, StageRecorder

BROKER_ENV = "JPLT_CELERY_BROKER"
QUEUE_ENV = "JPLT_CELERY_QUEUE"
RUN_DIR_ENV = "JPLT_RUN_DIR"
ROLE = "celery"
BROKER_DB = 15

app = Celery("jobpipe_peer", broker=os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/15"))
app.conf.update(task_acks_late=True, task_serializer="json", accept_content=["json"],
                task_ignore_result=True, broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False, worker_send_task_events=False)

_state: dict[int, tuple[StageRecorder, IntervalLog]] = {}


def _recorder() -> StageRecorder | None:
    pid = os.getpid()
    if pid not in _state:
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            return None
        recorder = StageRecorder(ROLE)
        _state[pid] = (recorder, IntervalLog(run_dir, recorder))
    return _state[pid][0]


@app.task(name="noop")  # type: ignore[untyped-decorator]
def noop(args: dict[str, Any]) -> None:
    """Sleep ``args["ms"]`` (if any) and record run time and end-to-end latency."""
    started_ns = time.time_ns()
    if args.get("ms"):
        time.sleep(float(args["ms"]) / 1000)
    finished_ns = time.time_ns()
    rec = _recorder()
    if rec is not None:
        rec.record_ns("run", finished_ns - started_ns)
        rec.record_ns("e2e", finished_ns - int(args["t"]))
        rec.count("done")


_clients: list[Any] = []


@app.task(name="latency_record")  # type: ignore[untyped-decorator]
def latency_record(args: dict[str, Any]) -> None:
    """``jobpipe bench latency``'s handler: append ``t start 0`` to the list ``args["to"]``
    (as :mod:`loadtest.bench.latency_app` does; Celery has no Kafka timestamp)."""
    started_ns = time.time_ns()
    if not _clients:
        import redis

        _clients.append(redis.Redis.from_url(app.conf.broker_url))
    _clients[0].rpush(args["to"], f"{args['t']} {started_ns} 0")


def broker_url(redis_url: str) -> str:
    """The jobpipe Redis server's URL with database 15."""
    base, _, _db = redis_url.rpartition("/")
    return f"{base}/{BROKER_DB}" if base.count("/") >= 2 else f"{redis_url}/{BROKER_DB}"


def celery_sender(plan: Any) -> tuple[Any, Any]:
    """A send function for :mod:`loadtest.sender`: one ``apply_async`` per job."""
    queue = os.environ[QUEUE_ENV]

    def send(_queue: str, _tenant: str | None, args_list: list[dict[str, Any]]) -> list[str]:
        return [noop.apply_async(args=[args], queue=queue).id for args in args_list]

    return send, lambda: None


def run_celery_peer(plan: Any, stack: Any, console: Console) -> tuple[Any, int]:
    """Run the workload through Celery; the workers' aggregate and the seconds covered."""
    import math

    import redis

    from loadtest.drive import Watch, child_env, drive
    from loadtest.processes import Fleet, python_argv
    from loadtest.start_signal import give_go, wait_ready

    run_dir = Path(plan.run_dir) / "peers" / "celery"
    run_dir.mkdir(parents=True, exist_ok=True)
    peer_plan = replace(plan, run_dir=str(run_dir), kill=None)
    plan_path = run_dir / "plan.json"
    import orjson

    plan_path.write_bytes(orjson.dumps(peer_plan.to_dict()))
    url = broker_url(stack.settings.redis.url)
    queue = f"jplt-{plan.namespace}"
    env = {**child_env(), BROKER_ENV: url, QUEUE_ENV: queue, RUN_DIR_ENV: str(run_dir)}
    fleet = Fleet(run_dir, env)
    client = redis.Redis.from_url(url)
    try:
        fleet.launch("celery", 0, python_argv(
            "celery", "-A", "loadtest.peers.celery_peer:app", "worker", "-Q", queue,
            "--pool", "prefork", "-c", str(plan.workers), "-l", "WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat"))
        for i in range(plan.producers):
            fleet.launch("celery-producer", i, python_argv(
                "loadtest.sender", str(plan_path), str(i), "celery"))
        console.print("[dim]celery: waiting for the worker...[/]")

        def celery_up() -> bool:
            return bool(app.control.ping(timeout=0.5))

        app.conf.broker_url = url
        wait_ready(fleet, run_dir, plan.producers, "celery-producer", celery_up)
        start_s = give_go(run_dir) / 1e9
        watch = Watch(run_dir, start_s, ROLE, "celery-producer")
        drive(peer_plan, fleet, watch, console, sampler=None, chaos=None, phase="celery")
        time.sleep(1.5)
        fleet.stop(["celery"])
        watch.poll()
    finally:
        fleet.stop()
        for key in [queue.encode(), *client.keys(f"_kombu.binding.{queue}*"),
                    b"unacked", b"unacked_index", b"unacked_mutex"]:
            client.delete(key)
        client.close()
    return watch.workers, max(math.ceil(time.time() - start_s), 1)

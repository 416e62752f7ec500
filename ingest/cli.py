"""``jobpipe enqueue`` (one-shot, for scripts), ``jobpipe acl producer`` (the Redis
rules of a producer user), the periodic jobs: ``jobpipe scheduler`` and ``jobpipe
schedules``, and the intake server's settings (``jobpipe ingest-server`` itself is
composed in ``dashboard/cli.py``, which may also mount the dashboard on it)."""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

import click
import orjson

from jobpipe.cli.acl import echo_setuser, user_and_queues
from jobpipe.cli.context import CliContext, split_queues
from jobpipe.errors import JobRejected
from jobpipe.settings import Settings


def run_enqueue(settings: Settings, queue: str, task: str, args: Any,
                **options: Any) -> str:
    """Enqueue one job and return its id (what ``jobpipe enqueue`` prints)."""
    from ingest import Producer

    with Producer(settings) as producer:
        return producer.enqueue(queue, task, args, **options)


@click.command()
@click.argument("queue")
@click.argument("task")
@click.argument("args_json", default="null", metavar="[ARGS_JSON]")
@click.option("--key", help="Ordering key: jobs with the same key keep their order.")
@click.option("--tenant", help="Tenant (fair queues).")
@click.option("--priority", type=int, help="Priority level, 0 = highest.")
@click.option("--delay-s", type=float, help="Run no earlier than this many seconds from now.")
@click.option("--idempotency-key", help="Idempotency key (and unique window name).")
@click.option("--unique-for-s", type=float, help="Drop repeats of the key within this window.")
@click.option("--max-attempts", type=int, help="Attempts before the job is dead-lettered.")
@click.pass_obj
def enqueue(obj: CliContext, queue: str, task: str, args_json: str, key: str | None,
            tenant: str | None, priority: int | None, delay_s: float | None,
            idempotency_key: str | None, unique_for_s: float | None,
            max_attempts: int | None) -> None:
    """Enqueue one job: QUEUE TASK '[ARGS_JSON]'; prints the job id."""
    try:
        args = orjson.loads(args_json)
    except orjson.JSONDecodeError as exc:
        raise JobRejected(f"ARGS_JSON is not valid JSON: {exc}") from None
    job_id = run_enqueue(obj.settings(), queue, task, args, key=key, tenant=tenant,
                         priority=priority, delay_s=delay_s, idempotency_key=idempotency_key,
                         unique_for_s=unique_for_s, max_attempts=max_attempts)
    click.echo(job_id)


def intake_settings(obj: CliContext, host: str | None, port: int | None) -> Settings:
    """The settings with ``--host``/``--port`` over ``ingest.http_host``/``http_port``."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["http_host"] = host
    if port:
        overrides["http_port"] = port
    return obj.settings({"ingest": overrides} if overrides else None)


@click.command(name="producer")
@user_and_queues("jobpipe-producer")
@click.pass_obj
def producer_acl(obj: CliContext, user: str, queues: str) -> None:
    """An ACL SETUSER command for a producer that may only enqueue to QUEUES.

    The user stays disabled until you append ``on >PASSWORD`` (no password is
    ever printed). Producers using it need ``redis.require_safe = false``.
    """
    from ingest.acl import producer_acl_rules

    settings = obj.settings()
    specs = settings.topology.select(split_queues(queues))
    echo_setuser(user, producer_acl_rules(settings.namespace, specs))


@click.command(name="scheduler")
@click.option("--user", default="jobpipe-scheduler", show_default=True,
              help="The Redis user name.")
@click.pass_obj
def scheduler_acl(obj: CliContext, user: str) -> None:
    """An ACL SETUSER command for `jobpipe scheduler`: it may enqueue to the
    queues of the [schedules] only, read Redis's clock and record its progress.

    As for producers: append ``on >PASSWORD``, and set ``redis.require_safe = false``.
    """
    from ingest.acl import scheduler_acl_rules

    settings = obj.settings()
    echo_setuser(user, scheduler_acl_rules(settings.namespace, settings.topology,
                                           settings.schedules.values()))


@click.command()
@click.option("--metrics-port", type=int, help="Serve Prometheus /metrics on this port.")
@click.pass_obj
def scheduler(obj: CliContext, metrics_port: int | None) -> None:
    """Enqueue each fire time of the [schedules] once, until SIGTERM or SIGINT.

    Run as many as you like: each fire time is enqueued once between them.
    """
    from ingest.scheduler import Scheduler
    from jobpipe.metrics import serve_metrics

    runner = Scheduler(obj.settings())
    if metrics_port is not None:
        serve_metrics(metrics_port)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner.run()
    finally:
        runner.close()


@click.command()
@click.option("--count", "-n", type=int, default=3, show_default=True,
              help="Fire times to list per schedule.")
@click.pass_obj
def schedules(obj: CliContext, count: int) -> None:
    """List the declared schedules and their next fire times (in each one's time zone)."""
    from ingest.scheduler import check_schedules
    from ingest.schedules import next_fires

    settings = obj.settings()
    check_schedules(settings)
    if not settings.schedules:
        click.echo("no schedules declared (add a [schedules.NAME] table)")
        return
    now_ms = time.time_ns() // 1_000_000
    for spec in settings.schedules.values():
        rule = f"cron {spec.cron!r}" if spec.cron else f"every {spec.interval_s} s"
        click.echo(f"{spec.name}: {rule} {spec.timezone} -> {spec.queue} {spec.task} "
                   f"(misfire {spec.misfire}, grace {spec.grace_s:g} s)")
        for at in next_fires(spec, now_ms, count):
            click.echo(f"  {at.isoformat()}")

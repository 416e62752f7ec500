"""``jobpipe bridge``: run the Redis-to-Kafka bridge; ``jobpipe bridge dead``: its dead list."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import click

from jobpipe.cli.acl import echo_setuser, user_and_queues
from jobpipe.cli.context import CliContext, split_queues
from jobpipe.settings import Settings
from jobpipe.supervisor import supervise

log = logging.getLogger(__name__)


def run_one(settings: Settings, queues: list[str] | None, bridge_id: str | None) -> None:
    """Run one bridge in this process until SIGTERM or SIGINT, then drain and return."""
    from bridge import Bridge

    bridge = Bridge(settings, queues, bridge_id)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the bridge (draining in-flight batches)", signum)
        bridge.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bridge.run()


def run_bridges(settings: Settings, queues: list[str] | None, processes: int,
                bridge_id: str | None, metrics_port: int | None) -> None:
    """Run ``processes`` bridges (forked children with ids ``<id>-<i>``) until a signal.

    A child that dies is started again under the same id, so it returns its
    predecessor's in-flight jobs at once.
    """
    from bridge.reaper import default_bridge_name

    base = bridge_id or (default_bridge_name() if processes > 1 else None)

    def run_child(i: int | None) -> None:
        run_one(settings, queues, base if i is None else f"{base}-{i}")

    supervise("bridge", processes, run_child, metrics_port, settings=settings)


@click.group(invoke_without_command=True)
@click.option("--queues", help="Comma-separated queues to bridge (default: all).")
@click.option("--processes", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Bridge processes to fork.")
@click.option("--metrics-port", type=int, help="Serve Prometheus /metrics on this port.")
@click.option("--bridge-id", help="Stable bridge name; a restart under it recovers at once.")
@click.pass_context
def bridge(ctx: click.Context, queues: str | None, processes: int, metrics_port: int | None,
           bridge_id: str | None) -> None:
    """Move jobs from Redis to Kafka (runs until SIGTERM; exits 0 after draining)."""
    if ctx.invoked_subcommand is not None:
        return
    obj: CliContext = ctx.obj
    settings = obj.settings()
    wanted = split_queues(queues)
    settings.topology.select(wanted)  # unknown queue: one clear error before forking
    run_bridges(settings, wanted, processes, bridge_id, metrics_port)


@bridge.group()
def dead() -> None:
    """Jobs Kafka refused for good (message too large, unknown topic ...)."""


@dead.command("ls")
@click.argument("queue")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.pass_obj
def dead_ls(obj: CliContext, queue: str, limit: int) -> None:
    """Show the newest dead jobs of QUEUE."""
    from bridge.dead import count_dead, list_dead
    from jobpipe.connections import redis_client

    settings = obj.settings()
    client = redis_client(settings.redis)
    records = list_dead(client, settings, queue, limit)
    click.echo(f"{count_dead(client, settings, queue)} dead jobs in {queue}")
    for r in records:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.at_ms / 1000))
        click.echo(f"{stamp}Z  {r.reason:18} {len(r.job):8d} B  {r.error[:80]}")


@dead.command("requeue")
@click.argument("queue")
@click.pass_obj
def dead_requeue(obj: CliContext, queue: str) -> None:
    """Return every dead job of QUEUE to the ready list it came from."""
    from bridge.dead import requeue_dead
    from jobpipe.connections import redis_client

    settings = obj.settings()
    moved = requeue_dead(redis_client(settings.redis), settings, queue)
    click.echo(f"requeued {moved} jobs of {queue}")


@click.command(name="bridge")
@user_and_queues("jobpipe-bridge")
@click.pass_obj
def bridge_acl(obj: CliContext, user: str, queues: str) -> None:
    """An ACL SETUSER command for a bridge of QUEUES: their ready, delayed,
    wake-up and in-flight keys, the bridges' registry, and its commands only.

    Append ``on >PASSWORD`` to enable it. It keeps CONFIG GET, so bridges still
    check eviction and AOF at start.
    """
    from bridge.acl import bridge_acl_rules

    settings = obj.settings()
    echo_setuser(user, bridge_acl_rules(settings.namespace,
                                        settings.topology.select(split_queues(queues))))

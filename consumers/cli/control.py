"""``jobpipe pause`` and ``jobpipe resume``: a whole queue, or one tenant of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from jobpipe.cli.context import CliContext

if TYPE_CHECKING:
    import redis

    from jobpipe.settings import Settings
    from jobpipe.topology import QueueSpec


@contextmanager
def _controlling(obj: CliContext, queue: str) -> Iterator[
        tuple[Settings, QueueSpec, redis.Redis[bytes]]]:
    """The settings, the queue (an unknown one is an error, not a silent no-op) and a
    Redis client, closed afterwards: what pausing and resuming both work with."""
    from jobpipe.connections import redis_client

    settings = obj.settings()
    spec = settings.topology.get(queue)
    client = redis_client(settings.redis)
    try:
        yield settings, spec, client
    finally:
        client.close()


@click.command()
@click.argument("queue")
@click.option("--tenant", help="Pause only this tenant (its jobs are parked in Redis).")
@click.pass_obj
def pause(obj: CliContext, queue: str, tenant: str | None) -> None:
    """Pause a queue on every worker within seconds, or park one tenant's jobs."""
    from consumers.control import pause_queue, pause_tenant

    with _controlling(obj, queue) as (settings, _, client):
        if tenant is None:
            pause_queue(client, settings.namespace, queue)
            click.echo(f"paused queue {queue}")
        else:
            pause_tenant(client, settings.namespace, queue, tenant)
            click.echo(f"paused tenant {tenant} of queue {queue}")


@click.command()
@click.argument("queue")
@click.option("--tenant", help="Resume only this tenant (its parked jobs are re-injected).")
@click.pass_obj
def resume(obj: CliContext, queue: str, tenant: str | None) -> None:
    """Resume a queue, or a tenant (its parked jobs go back first, oldest first)."""
    from consumers.control import resume_queue, resume_tenant

    with _controlling(obj, queue) as (settings, spec, client):
        if tenant is None:
            resume_queue(client, settings.namespace, spec)
            click.echo(f"resumed queue {queue}")
        else:
            moved = resume_tenant(client, settings.namespace, spec, tenant)
            click.echo(f"resumed tenant {tenant} of queue {queue}; {moved} parked job(s) "
                       "re-injected")

"""``jobpipe pause`` and ``jobpipe resume``: a whole queue, or one tenant of it."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext


@click.command()
@click.argument("queue")
@click.option("--tenant", help="Pause only this tenant (its jobs are parked in Redis).")
@click.pass_obj
def pause(obj: CliContext, queue: str, tenant: str | None) -> None:
    """Pause a queue on every worker within seconds, or park one tenant's jobs."""
    from consumers.control import pause_queue, pause_tenant
    from jobpipe.connections import redis_client

    settings = obj.settings()
    settings.topology.get(queue)  # an unknown queue is an error, not a silent no-op
    client = redis_client(settings.redis)
    try:
        if tenant is None:
            pause_queue(client, settings.namespace, queue)
            click.echo(f"paused queue {queue}")
        else:
            pause_tenant(client, settings.namespace, queue, tenant)
            click.echo(f"paused tenant {tenant} of queue {queue}")
    finally:
        client.close()


@click.command()
@click.argument("queue")
@click.option("--tenant", help="Resume only this tenant (its parked jobs are re-injected).")
@click.pass_obj
def resume(obj: CliContext, queue: str, tenant: str | None) -> None:
    """Resume a queue, or a tenant (its parked jobs go back first, oldest first)."""
    from consumers.control import resume_queue, resume_tenant
    from jobpipe.connections import redis_client

    settings = obj.settings()
    spec = settings.topology.get(queue)
    client = redis_client(settings.redis)
    try:
        if tenant is None:
            resume_queue(client, settings.namespace, queue)
            click.echo(f"resumed queue {queue}")
        else:
            moved = resume_tenant(client, settings.namespace, spec, tenant)
            click.echo(f"resumed tenant {tenant} of queue {queue}; {moved} parked job(s) "
                       "re-injected")
    finally:
        client.close()

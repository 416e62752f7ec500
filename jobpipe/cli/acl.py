"""``jobpipe acl``: the Redis ACL rules of least-privilege users."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext, split_queues


@click.group()
def acl() -> None:
    """Print Redis ACL rules generated from the topology."""


@acl.command()
@click.option("--user", default="jobpipe-producer", show_default=True,
              help="The Redis user name.")
@click.option("--queues", default="", help="Comma-separated queues (default: all).")
@click.pass_obj
def producer(obj: CliContext, user: str, queues: str) -> None:
    """An ACL SETUSER command for a producer that may only enqueue to QUEUES.

    The user stays disabled until you append ``on >PASSWORD`` (no password is
    ever printed). Producers using it need ``redis.require_safe = false``.
    """
    from ingest.acl import producer_acl_rules

    settings = obj.settings()
    specs = settings.topology.select(split_queues(queues))
    rules = producer_acl_rules(settings.namespace, specs)
    click.echo(" ".join(["ACL", "SETUSER", user, "reset", *rules]))
    click.echo("append `on >PASSWORD` to enable the user", err=True)

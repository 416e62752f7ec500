"""``jobpipe topics``: create or update the Kafka topics of the topology."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext


@click.group()
def topics() -> None:
    """Manage the Kafka topics of every queue."""


@topics.command("apply")
@click.option("--queue", "queues", multiple=True, help="Only these queues (default: all).")
@click.pass_obj
def apply(obj: CliContext, queues: tuple[str, ...]) -> None:
    """Create missing topics (main, retry tiers, dlq) and grow partitions. Idempotent."""
    from jobpipe.admin import apply_topics

    settings = obj.settings()
    for change in apply_topics(settings, settings.topology.select(queues)):
        click.echo(f"{change.action:9} {change.topic} ({change.partitions} partitions)")

"""``jobpipe dlq``: list, show, replay and purge a queue's dead-letter topic."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click
import orjson

from jobpipe.cli.context import CliContext

if TYPE_CHECKING:
    from consumers.dlq_record import DlqFilter

_task = click.option("--task", help="Only jobs of this task.")
_since = click.option("--since", help="Only records since a time: ISO 8601, or a duration "
                                      "back from now (30s, 15m, 2h, 1d).")
_limit = click.option("--limit", type=click.IntRange(min=1), help="At most N records.")


def _filter(task: str | None, since: str | None, limit: int | None,
            refs: tuple[str, ...] = ()) -> DlqFilter:
    from consumers.dlq_record import DlqFilter, parse_since_ms

    since_ms = parse_since_ms(since, time.time_ns() // 1_000_000) if since else None
    return DlqFilter(task=task, since_ms=since_ms, limit=limit, refs=refs)


@click.group()
def dlq() -> None:
    """Inspect and act on dead-lettered jobs."""


@dlq.command("ls")
@click.argument("queue")
@_task
@_since
@_limit
@click.pass_obj
def ls(obj: CliContext, queue: str, task: str | None, since: str | None,
       limit: int | None) -> None:
    """One line per DLQ record: ref (partition:offset), time, job id, task, reason,
    attempts, and whether it was replayed."""
    from consumers.dlq import list_records
    from consumers.dlq_record import summary_line

    settings = obj.settings()
    listed = list_records(settings, settings.topology.get(queue),
                          _filter(task, since, limit))
    for item in listed:
        click.echo(summary_line(item.record) + ("  replayed" if item.replayed else ""))
    click.echo(f"{len(listed)} record(s)", err=True)


@dlq.command("show")
@click.argument("queue")
@click.argument("refs", nargs=-1)
@_task
@_since
@_limit
@click.pass_obj
def show(obj: CliContext, queue: str, refs: tuple[str, ...], task: str | None,
         since: str | None, limit: int | None) -> None:
    """Full job and error history of records named by job id, PARTITION:OFFSET or
    OFFSET (all matching records when none is named)."""
    from consumers.dlq import list_records
    from consumers.dlq_record import detail

    settings = obj.settings()
    listed = list_records(settings, settings.topology.get(queue),
                          _filter(task, since, limit, refs))
    for item in listed:
        out = detail(item.record)
        out["replayed"] = item.replayed
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    if not listed:
        click.echo("no matching record", err=True)


@dlq.command("replay")
@click.argument("queue")
@click.argument("refs", nargs=-1)
@_task
@_since
@_limit
@click.pass_obj
def replay(obj: CliContext, queue: str, refs: tuple[str, ...], task: str | None,
           since: str | None, limit: int | None) -> None:
    """Send matching jobs back to the main topic: same id, attempt 1, replay recorded.
    A record is never replayed twice."""
    from consumers.dlq import replay_records

    settings = obj.settings()
    report = replay_records(settings, settings.topology.get(queue),
                            _filter(task, since, limit, refs))
    click.echo(report.summary())


@dlq.command("purge")
@click.argument("queue")
@click.option("--before", help="Only records before a time: ISO 8601, or a duration back "
                               "from now (30s, 15m, 2h, 1d). Default: all.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(obj: CliContext, queue: str, before: str | None, yes: bool) -> None:
    """Delete DLQ records for good (Kafka deletes a prefix: all, or all before a time)."""
    from consumers.dlq import purge_records
    from consumers.dlq_record import parse_since_ms

    settings = obj.settings()
    spec = settings.topology.get(queue)
    before_ms = parse_since_ms(before, time.time_ns() // 1_000_000) if before else None
    what = "every record" if before is None else f"records before {before}"
    if not yes:
        click.confirm(f"Delete {what} of the {queue} DLQ?", abort=True)
    deleted = purge_records(settings, spec, before_ms)
    click.echo(f"purged {sum(deleted.values())} record(s)")

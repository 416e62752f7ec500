"""``jobpipe dlq``: list, show, replay and purge a queue's dead-letter topic."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
import orjson

from jobpipe.cli.context import CliContext

if TYPE_CHECKING:
    from consumers.dlq.record import DlqFilter

_task = click.option("--task", help="Only jobs of this task.")
_since = click.option("--since", help="Only records since a time: ISO 8601, or a duration "
                                      "back from now (30s, 15m, 2h, 1d).")
_limit = click.option("--limit", type=click.IntRange(min=1), help="At most N records.")
_refs = click.argument("refs", nargs=-1)

def _selecting(by_ref: bool) -> Callable[[Callable[[CliContext, str, DlqFilter], None]],
                                         Callable[..., None]]:
    """QUEUE, REFS... (when ``by_ref``), --task, --since and --limit, handed to the
    command as one :class:`DlqFilter`: how every DLQ command picks its records."""
    def wrap(command: Callable[[CliContext, str, DlqFilter], None]) -> Callable[..., None]:
        @functools.wraps(command)
        def run(obj: CliContext, queue: str, task: str | None, since: str | None,
                limit: int | None, refs: tuple[str, ...] = ()) -> None:
            command(obj, queue, _filter(task, since, limit, refs))

        decorated = _task(_since(_limit(click.pass_obj(run))))
        return click.argument("queue")(_refs(decorated) if by_ref else decorated)
    return wrap


def _filter(task: str | None, since: str | None, limit: int | None,
            refs: tuple[str, ...] = ()) -> DlqFilter:
    from consumers.dlq.record import DlqFilter, parse_since_ms

    since_ms = parse_since_ms(since, time.time_ns() // 1_000_000) if since else None
    return DlqFilter(task=task, since_ms=since_ms, limit=limit, refs=refs)


@click.group()
def dlq() -> None:
    """Inspect and act on dead-lettered jobs."""


@dlq.command("ls")
@_selecting(by_ref=False)
def ls(obj: CliContext, queue: str, selection: DlqFilter) -> None:
    """One line per DLQ record: ref (partition:offset), time, job id, task, reason,
    attempts, and whether it was replayed."""
    from consumers.dlq.record import summary_line
    from consumers.dlq.tools import list_records

    settings = obj.settings()
    listed = list_records(settings, settings.topology.get(queue), selection)
    for item in listed:
        click.echo(summary_line(item.record) + ("  replayed" if item.replayed else ""))
    click.echo(f"{len(listed)} record(s)", err=True)


@dlq.command("show")
@_selecting(by_ref=True)
def show(obj: CliContext, queue: str, selection: DlqFilter) -> None:
    """Full job and error history of records named by job id, PARTITION:OFFSET or
    OFFSET (all matching records when none is named)."""
    from consumers.dlq.record import detail
    from consumers.dlq.tools import list_records

    settings = obj.settings()
    listed = list_records(settings, settings.topology.get(queue), selection)
    for item in listed:
        out = detail(item.record)
        out["replayed"] = item.replayed
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    if not listed:
        click.echo("no matching record", err=True)


@dlq.command("replay")
@_selecting(by_ref=True)
def replay(obj: CliContext, queue: str, selection: DlqFilter) -> None:
    """Send matching jobs back to the main topic: same id, attempt 1, replay recorded.
    A record is never replayed twice."""
    from consumers.dlq.tools import replay_records

    settings = obj.settings()
    report = replay_records(settings, settings.topology.get(queue), selection)
    click.echo(report.summary())


@dlq.command("purge")
@click.argument("queue")
@click.option("--before", help="Only records before a time: ISO 8601, or a duration back "
                               "from now (30s, 15m, 2h, 1d). Default: all.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(obj: CliContext, queue: str, before: str | None, yes: bool) -> None:
    """Delete DLQ records for good (Kafka deletes a prefix: all, or all before a time)."""
    from consumers.dlq.record import parse_since_ms
    from consumers.dlq.tools import purge_records

    settings = obj.settings()
    spec = settings.topology.get(queue)
    before_ms = parse_since_ms(before, time.time_ns() // 1_000_000) if before else None
    what = "every record" if before is None else f"records before {before}"
    if not yes:
        click.confirm(f"Delete {what} of the {queue} DLQ?", abort=True)
    deleted = purge_records(settings, spec, before_ms)
    click.echo(f"purged {sum(deleted.values())} record(s)")

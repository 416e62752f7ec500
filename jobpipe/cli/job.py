"""``jobpipe job ID`` and ``jobpipe cancel ID``: a job's state, and asking it to stop."""

from __future__ import annotations

import json

import click

from jobpipe.cli.context import CliContext
from jobpipe.errors import JobpipeError
from jobpipe.settings import Settings


def _unknown(settings: Settings, job_id: str) -> JobpipeError:
    if not any(spec.track_status for spec in settings.topology.queues.values()):
        return JobpipeError(f"unknown job {job_id!r}: no declared queue has "
                            "track_status = true")
    return JobpipeError(f"unknown job {job_id!r}: no queue with track_status knows it "
                        "(never enqueued there, or its record expired)")


@click.command()
@click.argument("job_id")
@click.pass_obj
def job(obj: CliContext, job_id: str) -> None:
    """Print a job's state as one JSON object (queues with track_status)."""
    from jobpipe import jobstatus
    from jobpipe.connections import redis_client

    settings = obj.settings()
    client = redis_client(settings.redis)
    try:
        status = jobstatus.lookup(client, settings, job_id)
    finally:
        client.close()
    if status is None:
        raise _unknown(settings, job_id)
    click.echo(json.dumps(status.to_json(), sort_keys=True))


@click.command()
@click.argument("job_id")
@click.pass_obj
def cancel(obj: CliContext, job_id: str) -> None:
    """Ask to cancel a job: one not started yet is cancelled at once, a running
    one is stopped by its worker, one that is over stays as it is."""
    from jobpipe import jobstatus
    from jobpipe.connections import redis_client

    settings = obj.settings()
    client = redis_client(settings.redis)
    try:
        outcome, status = jobstatus.cancel(client, settings, job_id)
    finally:
        client.close()
    if status is None:
        raise _unknown(settings, job_id)
    said = {"cancelled": "cancelled", "requested": "running: its worker was asked to stop it",
            "final": f"already {status.state}: nothing to cancel"}
    click.echo(f"job {job_id}: {said.get(outcome, outcome)}")

"""The ``jobpipe`` command line: a click group, one module per command group.

Each stage owns its commands; this frame names them by string and imports one
only when it runs or when ``jobpipe --help`` lists it (see :mod:`jobpipe.cli.lazy`).
A :class:`~jobpipe.errors.JobpipeError`, or a Redis or Kafka client failure
(translated here, once, by :mod:`jobpipe.client_errors`), becomes one line on
stderr and exit 1; ``-v`` adds the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from jobpipe.cli.context import CliContext
from jobpipe.cli.lazy import LazyGroup
from jobpipe.logs import setup_logging

log = logging.getLogger(__name__)

# command name -> "module:attribute"; each module owns one command group.
COMMANDS: dict[str, str] = {
    "dev": "jobpipe.cli.dev:dev",
    "topics": "jobpipe.cli.topics:topics",
    "enqueue": "ingest.cli:enqueue",
    "ingest-server": "dashboard.cli:ingest_server",  # the intake, +dashboard with --ui
    "scheduler": "ingest.cli:scheduler",
    "schedules": "ingest.cli:schedules",
    "bridge": "bridge.cli:bridge",
    "worker": "consumers.cli.worker:worker",
    "dlq": "consumers.cli.dlq:dlq",
    "pause": "consumers.cli.control:pause",
    "resume": "consumers.cli.control:resume",
    "stats": "jobpipe.cli.stats:stats",
    "dashboard": "dashboard.cli:dashboard",
    "job": "jobpipe.cli.job:job",
    "cancel": "jobpipe.cli.job:cancel",
    "bench": "jobpipe.cli.bench:bench",
    "loadtest": "loadtest.cli:loadtest",
    "capacity": "loadtest.cli:capacity",
    "check": "jobpipe.cli.check:check",
    "acl": "jobpipe.cli.acl:acl",
}


def _version() -> str:
    from jobpipe import __version__

    return __version__


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="jobpipe")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks on errors.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path),
              help="Settings file (default: $JOBPIPE_CONFIG, then ./jobpipe.toml).")
@click.option("--log-config", type=click.Path(exists=True, path_type=Path),
              help="A JSON logging dictConfig file.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, config_path: Path | None,
        log_config: Path | None) -> None:
    """jobpipe: hand off jobs in microseconds, never lose one, run them anywhere."""
    setup_logging(verbose, log_config)
    obj = ctx.ensure_object(CliContext)  # main() passes one in, to read its settings after
    obj.config_path, obj.verbose = config_path, verbose


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``jobpipe`` console script."""
    obj = CliContext()
    try:
        return cli.main(args=argv, standalone_mode=False, obj=obj)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        from jobpipe.client_errors import as_jobpipe_error  # imports redis and Kafka: late

        error = as_jobpipe_error(exc, obj.loaded)
        if error is None:
            raise  # a bug: the traceback is the report
        if obj.verbose:
            log.exception("failed")
        click.echo(f"jobpipe: error: {error}", err=True)
        sys.exit(1)

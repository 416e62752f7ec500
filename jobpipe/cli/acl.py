"""``jobpipe acl``: Redis ACL users of least privilege, one command per stage.

Each stage owns the rules of its user (``ingest/acl.py``, ``bridge/acl.py``,
``consumers/acl.py``)
and its command here, loaded on first use like the commands of ``jobpipe``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from jobpipe.cli.lazy import LazyGroup

ACL_COMMANDS: dict[str, str] = {
    "producer": "ingest.cli:producer_acl",
    "scheduler": "ingest.cli:scheduler_acl",
    "bridge": "bridge.cli:bridge_acl",
    "worker": "consumers.cli.worker:worker_acl",
}


@click.group(cls=LazyGroup, lazy=ACL_COMMANDS)
def acl() -> None:
    """Print Redis ACL rules generated from the topology."""


def echo_setuser(user: str, rules: list[str]) -> None:
    """Print the ``ACL SETUSER`` command; never a password (the user stays off)."""
    click.echo(" ".join(["ACL", "SETUSER", user, "reset", *rules]))
    click.echo("append `on >PASSWORD` to enable the user", err=True)


def user_and_queues(default_user: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--user`` and ``--queues`` options of a stage's ACL command."""
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("--queues", default="",
                               help="Comma-separated queues (default: all).")(command)
        return click.option("--user", default=default_user, show_default=True,
                            help="The Redis user name.")(command)
    return apply

"""One way to name a command by string and import it on first use.

The core's command line never imports a stage: each stage owns its commands
(``bridge/cli.py``, ``consumers/cli/``, ``ingest/cli.py``, ``loadtest/cli.py``),
and a group lists them as ``"module:attribute"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A group whose subcommands, given as ``name -> "module:attribute"``, load when used."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

"""One way to name a command by string and import it on first use.

The core's command line never imports a stage: each stage owns its commands
(``bridge/cli.py``, ``consumers/cli/``, ``ingest/cli.py``, ``loadtest/cli.py``),
and a group lists them as ``"module:attribute"``. Listing them (``jobpipe
--help``) reads each command's summary from its source instead of importing
every stage; a command whose source cannot be read that way is imported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            summary = docstring(self.lazy[name])
            if summary is not None:
                rows.append((name, click.Command(name, help=summary).get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def docstring(target: str) -> str | None:
    """The docstring of the function ``"module:attribute"`` names, read from the
    module's source without importing it (nor its package); ``None`` when the
    source is not a plain ``.py`` file or defines no such function."""
    module_name, attr = target.split(":")
    top, *rest = module_name.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name: found, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)), *rest)
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            return ast.get_docstring(node)
    return None

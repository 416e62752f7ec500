"""``jobpipe bench``: micro-benchmarks of one stage each (see docs/benchmarks.md)."""

from __future__ import annotations

import importlib

import click

# bench name -> "module:attribute" of a click command; each stage owns its own.
BENCHES: dict[str, str] = {
    "ingest": "loadtest.bench.ingest:ingest",
    "bridge": "loadtest.bench.bridge:bridge",
    "worker": "loadtest.bench.worker:worker",
}


class _LazyBenches(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in BENCHES:
            return None
        module_name, attr = BENCHES[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=_LazyBenches)
def bench() -> None:
    """Benchmarks of one stage at a time, with peers measured in the same run."""

"""``jobpipe bench``: micro-benchmarks of one stage each (see docs/benchmarks.md)."""

from __future__ import annotations

import click

from jobpipe.cli.lazy import LazyGroup

# bench name -> "module:attribute" of a click command; each stage owns its own.
BENCHES: dict[str, str] = {
    "ingest": "loadtest.bench.ingest:ingest",
    "latency": "loadtest.bench.latency:latency",
    "bridge": "loadtest.bench.bridge:bridge",
    "worker": "loadtest.bench.worker:worker",
    "replicas": "loadtest.bench.replicas:replicas",
    "scaleout": "loadtest.bench.scaleout:scaleout",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Benchmarks of one stage at a time, with peers measured in the same run."""

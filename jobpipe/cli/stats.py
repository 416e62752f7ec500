"""``jobpipe stats``: a live view of every queue, or one JSON snapshot for scripts."""

from __future__ import annotations

import json
import time

import click

from jobpipe.cli.context import CliContext, split_queues


@click.command()
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON instead of a table (one document per refresh).")
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.1), default=2.0,
              show_default=True, help="Seconds between refreshes; rates are deltas over it.")
@click.option("--queues", default="", help="Comma-separated queues (default: all).")
@click.pass_obj
def stats(obj: CliContext, once: bool, as_json: bool, interval_s: float, queues: str) -> None:
    """Backlog in Redis, lag in Kafka, rates, DLQ size, paused queues and tenants.

    With --once the rates are null: they need two snapshots.
    """
    run_stats(obj, once=once, as_json=as_json, interval_s=interval_s,
              queues=split_queues(queues) or [])


def run_stats(obj: CliContext, *, once: bool, as_json: bool, interval_s: float,
              queues: list[str]) -> None:
    """Collect and print until interrupted (or once)."""
    from rich.console import Console
    from rich.live import Live

    from jobpipe.stats import StatsCollector
    from jobpipe.stats_model import compute_rates, render_table, to_json

    collector = StatsCollector(obj.settings(), queues or None)
    console = Console()
    try:
        current = collector.snapshot()
        if once:
            if as_json:
                click.echo(json.dumps(to_json(current, {}), sort_keys=True))
            else:
                console.print(render_table(current, {}, collector.groups, console.width))
            return
        previous = None
        if as_json:
            while True:
                rates = compute_rates(previous, current)
                click.echo(json.dumps(to_json(current, rates), sort_keys=True))
                time.sleep(interval_s)
                previous, current = current, collector.snapshot()
        with Live(render_table(current, {}, collector.groups, console.width), console=console,
                  auto_refresh=False) as live:
            while True:
                time.sleep(interval_s)
                previous, current = current, collector.snapshot()
                live.update(render_table(current, compute_rates(previous, current),
                                         collector.groups, console.width), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        collector.close()

"""``jobpipe dashboard``: the web dashboard."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8710, show_default=True,
              help="Port to listen on.")
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback --host without ingest.tokens.")
@click.option("--metrics", "metrics_urls", multiple=True, metavar="URL",
              help="A worker's /metrics address (its --metrics-port), for end-to-end "
                   "latency; repeat for each worker.")
@click.pass_obj
def dashboard(obj: CliContext, host: str, port: int, insecure: bool,
              metrics_urls: tuple[str, ...]) -> None:
    """A web dashboard: queues, live graphs, pause and resume, DLQ browse and replay."""
    from dashboard.server import run_dashboard

    run_dashboard(obj.settings(), host, port, insecure=insecure,
                  ready=lambda url: click.echo(f"dashboard: {url}", err=True),
                  metrics_urls=metrics_urls)

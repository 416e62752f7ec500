"""``jobpipe dashboard``: the web dashboard."""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext


@click.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1; with --with-intake "
                             "ingest.http_host].")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on [default: 8710; with --with-intake ingest.http_port].")
@click.option("--with-intake", is_flag=True,
              help="Be the HTTP intake too: its routes, address, TLS and tokens, with the "
                   "dashboard under /ui/.")
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback address without ingest.tokens.")
@click.option("--metrics", "metrics_urls", multiple=True, metavar="URL",
              help="A worker's /metrics address (its --metrics-port), for end-to-end "
                   "latency; repeat for each worker.")
@click.pass_obj
def dashboard(obj: CliContext, host: str | None, port: int | None, with_intake: bool,
              insecure: bool, metrics_urls: tuple[str, ...]) -> None:
    """A web dashboard: queues, live graphs, pause and resume, DLQ browse and replay."""
    from dashboard.server import run_dashboard, run_with_intake

    if with_intake:
        from ingest.cli import intake_settings

        run_with_intake(intake_settings(obj, host, port), insecure=insecure, ready=announce,
                        metrics_urls=metrics_urls)
        return
    run_dashboard(obj.settings(), host or "127.0.0.1", 8710 if port is None else port,
                  insecure=insecure, ready=announce, metrics_urls=metrics_urls)


def announce(url: str) -> None:
    click.echo(f"dashboard: {url}", err=True)

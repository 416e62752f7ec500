"""``jobpipe dashboard`` (the web dashboard) and ``jobpipe ingest-server`` (the HTTP
intake, with the dashboard under ``/ui/`` when asked).

The intake's server is composed here rather than in ``ingest/``: only this room
may import both the intake and the dashboard (docs/architecture.md).
"""

from __future__ import annotations

import click

from jobpipe.cli.context import CliContext

metrics_option = click.option(
    "--metrics", "metrics_urls", multiple=True, metavar="URL",
    help="A worker's /metrics address (its --metrics-port), for the dashboard's "
         "end-to-end latency; repeat for each worker.")


@click.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1; with --with-intake "
                             "ingest.http_host].")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on [default: 8710; with --with-intake ingest.http_port].")
@click.option("--with-intake", is_flag=True,
              help="Be the HTTP intake too: its routes, address, TLS and tokens, with the "
                   "dashboard under /ui/ (as jobpipe ingest-server --ui).")
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback address without ingest.tokens.")
@metrics_option
@click.pass_obj
def dashboard(obj: CliContext, host: str | None, port: int | None, with_intake: bool,
              insecure: bool, metrics_urls: tuple[str, ...]) -> None:
    """A web dashboard: queues, live graphs, pause and resume, DLQ browse and replay."""
    from dashboard.server import run_dashboard

    if with_intake:
        _serve_intake(obj, host, port, insecure=insecure, ui=True, metrics_urls=metrics_urls)
        return
    run_dashboard(obj.settings(), host or "127.0.0.1", 8710 if port is None else port,
                  insecure=insecure, ready=announce, metrics_urls=metrics_urls)


@click.command("ingest-server")
@click.option("--host", help="Listen address (default: ingest.http_host).")
@click.option("--port", type=int, help="Listen port (default: ingest.http_port).")
@click.option("--insecure", is_flag=True,
              help="Listen beyond loopback without ingest.tokens (anyone may enqueue).")
@click.option("--ui", is_flag=True,
              help="Serve the web dashboard under /ui/ too, behind the same ingest.tokens.")
@metrics_option
@click.pass_obj
def ingest_server(obj: CliContext, host: str | None, port: int | None, insecure: bool,
                  ui: bool, metrics_urls: tuple[str, ...]) -> None:
    """Serve the HTTP intake: POST /v1/queues/{queue}/jobs, /healthz, /openapi.json.

    Without ingest.tokens it listens on a loopback address only, unless --insecure.
    With --ui it also serves the dashboard under /ui/."""
    if metrics_urls and not ui:
        raise click.UsageError("--metrics is for the dashboard: add --ui")
    _serve_intake(obj, host, port, insecure=insecure, ui=ui, metrics_urls=metrics_urls)


def _serve_intake(obj: CliContext, host: str | None, port: int | None, *, insecure: bool,
                  ui: bool, metrics_urls: tuple[str, ...]) -> None:
    """The intake on its address (``--host``/``--port`` over the settings), with the
    dashboard under ``/ui/`` when ``ui``."""
    from ingest.cli import intake_settings

    settings = intake_settings(obj, host, port)
    if not ui:
        from ingest.http import run_server

        run_server(settings, insecure=insecure)
        return
    from dashboard.server import run_with_intake

    run_with_intake(settings, insecure=insecure, ready=announce, metrics_urls=metrics_urls)


def announce(url: str) -> None:
    click.echo(f"dashboard: {url}", err=True)

"""Run the dashboard until interrupted: on a port of its own, or beside the intake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from dashboard.app import create_app, standalone_app
from dashboard.backend import Backend
from ingest.http.app import run_server
from jobpipe.http_access import check_exposure
from jobpipe.settings import Settings

log = logging.getLogger(__name__)


def ui_app(settings: Settings, metrics_urls: Sequence[str] = ()) -> web.Application:
    """The dashboard, to mount at ``/ui``; ``metrics_urls`` are the workers' ``/metrics``
    addresses (end-to-end latency)."""
    return create_app(settings.ingest.tokens, Backend(settings, metrics_urls))


async def serve(settings: Settings, host: str, port: int,
                ready: Callable[[str], None] | None = None,
                metrics_urls: Sequence[str] = ()) -> None:
    """Serve on ``host:port`` until cancelled; ``ready`` hears the page's address."""
    runner = web.AppRunner(standalone_app(ui_app(settings, metrics_urls)), access_log=None)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        url = f"http://{host}:{port}/ui/"
        log.info("dashboard listening on %s", url)
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_dashboard(settings: Settings, host: str, port: int, *, insecure: bool,
                  ready: Callable[[str], None] | None = None,
                  metrics_urls: Sequence[str] = ()) -> None:
    """Check who could reach it, then serve (see :func:`serve`)."""
    check_exposure(host, settings.ingest.tokens, insecure, host_setting="--host",
                   server="dashboard", anyone_could="pause queues and purge dead letters")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops it
        asyncio.run(serve(settings, host, port, ready, metrics_urls))


def run_with_intake(settings: Settings, *, insecure: bool,
                    ready: Callable[[str], None] | None = None,
                    metrics_urls: Sequence[str] = ()) -> None:
    """Serve the HTTP intake (its address, TLS and tokens) with the dashboard at ``/ui/``;
    ``ready`` hears the page's address once the intake's checks passed."""

    def mount(app: web.Application) -> None:
        app.add_subapp("/ui", ui_app(settings, metrics_urls))
        if ready is not None:
            ingest = settings.ingest
            scheme = "http" if ingest.http_tls_certfile is None else "https"
            ready(f"{scheme}://{ingest.http_host}:{ingest.http_port}/ui/")

    with contextlib.suppress(KeyboardInterrupt):
        run_server(settings, insecure=insecure, extend=mount)

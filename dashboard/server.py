"""Run the dashboard until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from dashboard.app import create_app
from dashboard.backend import Backend
from jobpipe.http_access import check_exposure
from jobpipe.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, host: str, port: int,
                ready: Callable[[str], None] | None = None,
                metrics_urls: Sequence[str] = ()) -> None:
    """Serve on ``host:port`` until cancelled; ``ready`` hears the page's address;
    ``metrics_urls`` are the workers' ``/metrics`` addresses (end-to-end latency)."""
    backend = Backend(settings, metrics_urls)
    runner = web.AppRunner(create_app(settings.ingest.tokens, backend), access_log=None)
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
        backend.close()


def run_dashboard(settings: Settings, host: str, port: int, *, insecure: bool,
                  ready: Callable[[str], None] | None = None,
                  metrics_urls: Sequence[str] = ()) -> None:
    """Check who could reach it, then serve (see :func:`serve`)."""
    check_exposure(host, settings.ingest.tokens, insecure, host_setting="--host",
                   server="dashboard", anyone_could="pause queues and purge dead letters")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops it
        asyncio.run(serve(settings, host, port, ready, metrics_urls))

"""A dashboard served on a thread, a worker on another, and a headless chromium."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Iterator

import pytest

from dashboard.server import serve
from jobpipe.admin import apply_topics
from jobpipe.devstack.ports import free_port
from jobpipe.metrics import serve_metrics
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import worker_running
from tests.services import IN_CI

TOKEN = "dashboard-test-token"
QUEUE = "dashq"  # a name no other test uses: the process's metrics are labelled by queue


@pytest.fixture
def dash_settings(make_settings, kafka_cleanup, redis_client) -> Settings:
    settings = make_settings(queues={QUEUE: {"partitions": 1, "retry_tiers_s": [1],
                                            "track_status": True},
                                     "fair": {"partitions": 1, "fair": True}},
                             ingest={"tokens": [TOKEN]},
                             worker={"control_interval_s": 0.5})
    apply_topics(settings)
    return settings


@pytest.fixture
def executed(dash_settings) -> Iterator[list[str]]:
    """Job ids run by a real Worker on a thread, for the length of the test."""
    with worker_running(dash_settings) as seen:
        yield seen


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """This process's ``/metrics`` (where the worker thread records its latencies)."""
    server = serve_metrics(0)
    yield f"http://127.0.0.1:{server.port}/metrics"
    server.close()


@pytest.fixture
def dashboard_url(dash_settings, metrics_url) -> Iterator[str]:
    """The dashboard's ``/ui/`` address, served on a thread for the test."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: list[str] = []

    def on_ready(url: str) -> None:
        found.append(url)
        ready.set()

    task = loop.create_task(serve(dash_settings, "127.0.0.1", free_port(), on_ready,
                                  [metrics_url]))

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # how the test stops it
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the dashboard did not start"
    yield found[0]
    loop.call_soon_threadsafe(task.cancel)
    thread.join(30)
    assert not thread.is_alive()
    loop.close()


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's chromium, headless, driven by its chromedriver (nothing downloaded)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        if IN_CI:
            raise RuntimeError("chromium and chromium-driver are needed: scripts/bootstrap "
                               "installs them")
        pytest.skip("no chromium/chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    yield chrome
    chrome.quit()

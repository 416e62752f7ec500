"""Each long-running process's ``/metrics`` lists the metrics docs/operations.md documents."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from jobpipe import metrics
from jobpipe.admin import apply_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def documented() -> set[str]:
    """Metric families named in the metrics table of docs/operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text()
    return set(re.findall(r"^\| `(jobpipe_[a-z0-9_]+)`", text, flags=re.M))


def _families(body: str) -> set[str]:
    found = re.findall(r"^# HELP (jobpipe_[a-z0-9_]+) ", body, flags=re.M)
    return {name.removesuffix("_total") for name in found}


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _family(name: str) -> str:
    return name.removesuffix("_total")


def test_documented_metrics_are_exactly_the_exported_ones():
    exported = {_family(re.sub(r"_(bucket|sum|count)$", "", n))
                for n in metrics.exported_names()}
    assert {_family(n) for n in documented()} == exported


def test_in_process_exporter_lists_every_documented_metric():
    server = metrics.serve_metrics(0, "127.0.0.1")
    try:
        body = _scrape(server.port)
    finally:
        server.close()
    assert {_family(n) for n in documented()} <= _families(body)


def test_bridge_processes_serve_merged_metrics(make_settings, services, namespace,
                                               redis_client, kafka_cleanup, tmp_path):
    from ingest import Producer
    from jobpipe.devstack import free_port

    settings = make_settings()
    apply_topics(settings)
    config = tmp_path / "jobpipe.toml"
    config.write_text(f'namespace = "{namespace}"\n[queues.default]\npartitions = 3\n'
                      "retry_tiers_s = [1, 2]\n")
    port = free_port()
    env = {**os.environ, "JOBPIPE_REDIS_URL": services.redis_url,
           "JOBPIPE_KAFKA_BOOTSTRAP": services.kafka_bootstrap}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "bridge.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jobpipe", "-c", str(config), "bridge",
                                 "--processes", "2", "--metrics-port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        with Producer(settings) as producer:
            producer.enqueue_many("default", "t", [{"i": i} for i in range(40)])
        wanted = 'jobpipe_jobs_bridged_total{queue="default"} 40.0'
        deadline, body = time.monotonic() + 60, ""
        while wanted not in body and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                body = _scrape(port)
            time.sleep(0.2)
        assert wanted in body  # summed over both processes
        assert {_family(n) for n in documented()} <= _families(body)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()

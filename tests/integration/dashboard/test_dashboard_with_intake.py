"""``jobpipe ingest-server --ui`` and ``jobpipe dashboard --with-intake``: one server is
the intake and the dashboard, behind the same tokens; without ``--ui`` the intake
serves no dashboard."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobpipe.devstack.ports import free_port
from jobpipe.settings import Settings
from tests.integration.consumers_ops.conftest import wait_for
from tests.integration.dashboard.conftest import TOKEN
from tests.services import ROOT

pytestmark = pytest.mark.integration


def _call(url: str, body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@contextlib.contextmanager
def _server(settings: Settings, tmp_path: Path, namespace: str,
            *argv: str) -> Iterator[tuple[str, Path]]:
    """``jobpipe ARGV --port P`` as a child process (its base URL and log), until the
    test is done; it answers /healthz before the test goes on."""
    config = tmp_path / "jobpipe.toml"
    config.write_text('[ingest]\ntokens = ["' + TOKEN + '"]\n[queues.mail]\npartitions = 1\n')
    port = free_port()
    env = {**os.environ, "JOBPIPE_CONFIG": str(config), "JOBPIPE_NAMESPACE": namespace,
           "JOBPIPE_REDIS_URL": settings.redis.url,
           "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "jobpipe", *argv, "--port", str(port)],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _call(base + "/healthz")[0] == 200, 60), log.read_text()
        yield base, log
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize("argv", [("ingest-server", "--ui"), ("dashboard", "--with-intake")])
def test_a_job_posted_to_the_intake_shows_in_the_dashboard_of_the_same_server(
        make_settings, redis_client, kafka_cleanup, tmp_path, namespace, argv):
    settings = make_settings(queues={"mail": {"partitions": 1}})
    with _server(settings, tmp_path, namespace, *argv) as (base, log):
        assert f"dashboard: {base}/ui/" in log.read_text()
        code, body = _call(base + "/v1/queues/mail/jobs", b'{"task": "send", "args": {}}')
        assert code == 202, body
        assert _call(base + "/ui/api/stats", token=None)[0] == 401
        code, body = _call(base + "/ui/api/stats")
        assert code == 200, body
        assert json.loads(body)["queues"]["mail"]["redis"]["ready"] == 1
        code, page = _call(base + "/ui/", token=None)
        assert code == 200
        assert b"/ui/static/app.js" in page


def test_the_intake_serves_the_dashboard_only_when_asked(make_settings, redis_client,
                                                         kafka_cleanup, tmp_path, namespace):
    settings = make_settings(queues={"mail": {"partitions": 1}})
    with _server(settings, tmp_path, namespace, "ingest-server") as (base, log):
        code, body = _call(base + "/v1/queues/mail/jobs", b'{"task": "send", "args": {}}')
        assert code == 202, body
        assert _call(base + "/ui/", token=None)[0] == 404
        assert _call(base + "/ui/api/stats")[0] == 404
        assert "dashboard:" not in log.read_text()

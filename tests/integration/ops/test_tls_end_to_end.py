"""Every component over TLS: Redis on ``tls-port`` only (client certificate
required) and Kafka over SSL, then SASL_SSL (SCRAM). Producer (sync and
asyncio), ``jobpipe ingest-server`` (itself serving HTTPS), bridge, worker with
a retry through the retry relay, ``jobpipe stats`` and ``jobpipe dlq ls`` all
run a job end to end, configured from one ``jobpipe.toml``. A third listener
requires client certificates (mutual TLS): a client without one is refused in
one line, one with it runs jobs. One private TLS stack serves the whole module."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvloop

from bridge import Bridge
from consumers import App, JobContext, Worker
from ingest import AsyncProducer, Producer
from jobpipe.admin import apply_topics
from jobpipe.devstack import DevStack, ExtraListener, TlsFiles, make_test_pki
from jobpipe.devstack.ports import free_port, free_port_block
from jobpipe.devstack.processes import poll_until
from jobpipe.errors import StackError
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.scram import (
    add_scram_user,
    sasl_client_config,
    scram_listener_properties,
)
from tests.private_stack import started
from tests.services import skip_unless_ci

pytestmark = pytest.mark.integration

USER, PASSWORD = "jp-tls", "tls-Scram-Secr3t"
TOKEN = "tls-intake-token"


@dataclass(frozen=True)
class TlsStack:
    pki: TlsFiles
    redis_url: str
    bootstrap: dict[str, str]  # security protocol -> its listener's address


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory) -> Iterator[TlsStack]:
    root = tmp_path_factory.mktemp("tls")
    try:
        pki = make_test_pki(root / "pki")
    except StackError as exc:
        skip_unless_ci(f"cannot make test certificates: {exc}")
    ssl_port, sasl_port, mtls_port = free_port_block(2), free_port_block(2), free_port_block(2)
    stack = DevStack(root / "stack", redis_port=free_port(), kafka_port=free_port_block(2),
                     kafka_heap="512m", tls=pki, start_timeout_s=300,
                     kafka_extra_listeners=[ExtraListener("SSL", "SSL", ssl_port),
                                            ExtraListener("SASL_SSL", "SASL_SSL", sasl_port),
                                            ExtraListener("MTLS", "SSL", mtls_port)],
                     kafka_extra_properties={**scram_listener_properties("SASL_SSL"),
                                             "listener.name.mtls.ssl.client.auth": "required"})
    with started(stack, "TLS stack"):
        add_scram_user(stack.kafka_bootstrap, USER, PASSWORD)
        yield TlsStack(pki, stack.redis_url, {"SSL": f"127.0.0.1:{ssl_port}",
                                              "SASL_SSL": f"127.0.0.1:{sasl_port}",
                                              "MTLS": f"127.0.0.1:{mtls_port}"})


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or number is a valid TOML one


def _write_config(path: Path, stack: TlsStack, protocol: str, namespace: str,
                  http_port: int) -> Path:
    """The one settings file every component, in process and on the CLI, reads."""
    kafka = {"security.protocol": "SSL" if protocol == "MTLS" else protocol,
             "ssl.ca.location": str(stack.pki.ca)}
    if protocol == "MTLS":  # the listener requires a client certificate
        kafka.update({"ssl.certificate.location": str(stack.pki.client_cert),
                      "ssl.key.location": str(stack.pki.client_key)})
    if protocol == "SASL_SSL":
        kafka.update(sasl_client_config(protocol, USER, PASSWORD))
    lines = [f"namespace = {_toml(namespace)}",
             "[redis]", f"url = {_toml(stack.redis_url)}",
             f"ssl_ca_certs = {_toml(str(stack.pki.ca))}",
             f"ssl_certfile = {_toml(str(stack.pki.client_cert))}",
             f"ssl_keyfile = {_toml(str(stack.pki.client_key))}",
             "[kafka]", f"bootstrap = {_toml(stack.bootstrap[protocol])}",
             "[kafka.config]", *(f"{_toml(k)} = {_toml(v)}" for k, v in kafka.items()),
             "[ingest]", f"tokens = [{_toml(TOKEN)}]", f"http_port = {http_port}",
             f"http_tls_certfile = {_toml(str(stack.pki.server_cert))}",
             f"http_tls_keyfile = {_toml(str(stack.pki.server_key))}",
             "[queues.default]", "partitions = 2", "shards = 2", "retry_tiers_s = [1]",
             "max_attempts = 2"]
    path.write_text("\n".join(lines) + "\n")
    return path


async def _enqueue_async(settings: Settings) -> list[str]:
    async with AsyncProducer(settings) as producer:
        return await producer.enqueue_many("default", "work", [{"via": "aio"}] * 2)


def _env() -> dict[str, str]:
    """The environment of a jobpipe command: the settings come from its -c file only."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBPIPE_")}


@contextlib.contextmanager
def _intake_server(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``jobpipe ingest-server`` as a child process, stopped by its PID."""
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "jobpipe", "-c", str(config),
                                   "ingest-server"], env=_env(), stdout=out, stderr=out)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(30)


def _https(url: str, ca: Path, body: object = None) -> tuple[int, bytes]:
    """One request, verifying the server's certificate against ``ca``; (status, body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # not listening yet
        return 0, b""


def _post_over_https(server: subprocess.Popen[bytes], base: str, ca: Path, log: Path) -> list[str]:
    """Two jobs through the intake, once its /healthz answers over HTTPS."""
    up = poll_until(lambda: server.poll() is not None or _https(f"{base}/healthz", ca)[0] == 200,
                    90, 0.2)
    assert server.poll() is None, log.read_text()
    assert up, log.read_text()
    status, body = _https(f"{base}/v1/queues/default/jobs", ca,
                          {"jobs": [{"task": "work", "args": {"via": "https"}}] * 2})
    assert status == 202, body
    ids: list[str] = json.loads(body)["ids"]
    return ids


def _app(done: set[str], attempts: dict[str, int]) -> App:
    app = App("tls")

    @app.task
    async def work(ctx: JobContext, args: dict) -> None:
        done.add(ctx.job_id)

    @app.task
    async def flaky(ctx: JobContext, args: dict) -> None:
        attempts[ctx.job_id] = ctx.attempt
        if ctx.attempt == 1:
            raise RuntimeError("fails once, then the retry relay brings it back")
        done.add(ctx.job_id)

    @app.task
    async def doomed(ctx: JobContext, args: dict) -> None:
        raise RuntimeError("fails every attempt: dead-lettered")

    return app


def _jobpipe(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobpipe", "-c", str(config), *args],
                          capture_output=True, text=True, env=_env(), timeout=120, check=False)


# The first test also waits for the module's TLS stack (Kafka takes minutes on a
# loaded machine), and pytest-timeout counts fixture setup.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_every_component_runs_jobs_over_tls(tls_stack, protocol, namespace, tmp_path):
    http_port = free_port()
    config = _write_config(tmp_path / "jobpipe.toml", tls_stack, protocol, namespace,
                           http_port)
    settings = load_settings(config, environ={})
    apply_topics(settings)

    log = tmp_path / "ingest-server.log"
    with _intake_server(config, log) as server:
        with Producer(settings) as producer:
            work_ids = producer.enqueue_many("default", "work", [{"via": "sync"}] * 2)
            flaky_id = producer.enqueue("default", "flaky", {})
            doomed_id = producer.enqueue("default", "doomed", {})
        work_ids += asyncio.run(_enqueue_async(settings))
        work_ids += _post_over_https(server, f"https://127.0.0.1:{http_port}",
                                     tls_stack.pki.ca, log)
    assert len(set(work_ids)) == 6
    assert Bridge(settings).run_until_idle(60)

    done: set[str] = set()
    attempts: dict[str, int] = {}
    worker = Worker(settings, _app(done, attempts))  # runs the retry relay too
    thread = threading.Thread(target=uvloop.run, args=(worker.async_run(),), daemon=True)
    thread.start()
    try:
        assert poll_until(lambda: done >= {*work_ids, flaky_id}, 90, 0.1), (done, attempts)
        assert attempts[flaky_id] == 2
        assert poll_until(
            lambda: doomed_id in _jobpipe(config, "dlq", "ls", "default").stdout, 90, 1.0)
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert doomed_id not in done

    stats = _jobpipe(config, "stats", "--once", "--json")
    assert stats.returncode == 0, stats.stderr
    queue = json.loads(stats.stdout)["queues"]["default"]
    assert queue["redis"]["backlog"] == 0
    assert queue["kafka"]["dlq_size"] == 1
    assert queue["kafka"]["produced_total"] == 10  # 8 jobs, 2 relayed retries


def test_a_listener_requiring_client_certificates_admits_only_a_client_with_one(
        tls_stack, namespace, tmp_path):
    config = _write_config(tmp_path / "jobpipe.toml", tls_stack, "MTLS", namespace,
                           free_port())
    bare = tmp_path / "no-client-cert.toml"
    bare.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                            if not line.startswith(('"ssl.certificate', '"ssl.key'))))
    refused = _jobpipe(bare, "check")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith(f"jobpipe: error: Kafka at {tls_stack.bootstrap['MTLS']}")
    assert "bad certificate" in line  # the broker's TLS alert, named at once
    admitted = _jobpipe(config, "check")
    assert admitted.returncode == 0, admitted.stderr

    settings = load_settings(config, environ={})
    apply_topics(settings)
    with Producer(settings) as producer:
        ids = set(producer.enqueue_many("default", "work", [{"via": "mtls"}] * 3))
    assert Bridge(settings).run_until_idle(60)
    done: set[str] = set()
    assert Worker(settings, _app(done, {}), retry_relay=False).run_until_idle(60)
    assert done == ids

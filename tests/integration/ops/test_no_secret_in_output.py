"""A run with a Redis password in the URL never shows the password.

Against a real Redis with ``requirepass``: the sync and asyncio producers'
warnings and errors, the CLI (check, stats, pause, resume, enqueue, bridge,
with ``-v`` debug logging) with the right password, a wrong one and an
unreachable address, and the Prometheus exposition. Every captured log record
and every byte of CLI output is scanned for the secrets.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from jobpipe.devstack import free_port
from jobpipe.errors import ConfigError, IntakeUnavailable
from jobpipe.metrics import render_metrics
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.conftest import PasswordRedis
from tests.integration.ops.test_cli_errors import run_cli

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "Wr0ng-pa55word-d41d"


def _settings(url: str, namespace: str, kafka: str, **ingest: object) -> Settings:
    return load_settings(None, environ={}, overrides={
        "namespace": namespace, "redis": {"url": url, "socket_timeout_s": 1.0},
        "kafka": {"bootstrap": kafka}, "ingest": {"deadline_s": 0.3, **ingest}})


def _producer_run(good: str, down: str, wrong: str, namespace: str, kafka: str,
                  spool: Path) -> list[str]:
    """Drive both producers through success, 'not reachable yet', spooling and giving up."""
    from ingest import AsyncProducer, Producer

    errors: list[str] = []
    with Producer(_settings(good, namespace, kafka)) as producer:
        producer.enqueue("default", "t", {"n": 1})
    with Producer(_settings(down, namespace, kafka, spool_path=str(spool / "sync"))) as producer:
        producer.enqueue("default", "t", {"n": 2})  # spooled, with a warning
    with pytest.raises(IntakeUnavailable) as gave_up, \
            Producer(_settings(down, namespace, kafka)) as producer:
        producer.enqueue("default", "t", {"n": 3})
    errors.append(str(gave_up.value))
    with pytest.raises(ConfigError) as refused:
        Producer(_settings(wrong, namespace, kafka))
    errors.append(str(refused.value))

    async def run_async() -> None:
        async with AsyncProducer(_settings(good, namespace, kafka)) as producer:
            await producer.enqueue("default", "t", {"n": 4})
        async with AsyncProducer(_settings(down, namespace, kafka,
                                           spool_path=str(spool / "aio"))) as producer:
            await producer.enqueue("default", "t", {"n": 5})
        with pytest.raises(IntakeUnavailable) as aio_gave_up:
            async with AsyncProducer(_settings(down, namespace, kafka)) as producer:
                await producer.enqueue("default", "t", {"n": 6})
        errors.append(str(aio_gave_up.value))

    asyncio.run(run_async())
    return errors


def test_no_log_line_or_output_shows_the_password(
        password_redis: PasswordRedis, services, namespace: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = password_redis.password
    good = password_redis.url
    down = f"redis://:{secret}@127.0.0.1:{free_port()}/0"
    wrong = good.replace(secret, WRONG_PASSWORD)
    kafka = services.kafka_bootstrap
    caplog.set_level(logging.DEBUG)

    shown = _producer_run(good, down, wrong, namespace, kafka, tmp_path)
    cli_runs = [(["-v", "check"], good), (["-v", "check"], down), (["check"], wrong),
                (["-v", "stats", "--once", "--json"], good), (["pause", "default"], good),
                (["resume", "default"], good), (["-v", "enqueue", "default", "t"], good),
                (["-v", "enqueue", "default", "t"], down), (["-v", "bridge"], down),
                (["-v", "bridge"], wrong)]
    for args, url in cli_runs:
        result = run_cli(*args, cwd=tmp_path, env={
            "JOBPIPE_REDIS_URL": url, "JOBPIPE_KAFKA_BOOTSTRAP": kafka,
            "JOBPIPE_NAMESPACE": namespace, "JOBPIPE_INGEST_DEADLINE_S": "0.3"})
        shown += [result.stdout, result.stderr]
    shown.append(render_metrics()[0].decode())
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    shown += [formatter.format(record) for record in caplog.records]

    everything = "\n".join(shown)
    for password in (secret, WRONG_PASSWORD):
        leaks = [line for line in everything.splitlines() if password in line]
        assert not leaks, leaks
    # The URLs were shown, redacted: a run that printed nothing would prove nothing.
    assert "ok: redis redis://:***@127.0.0.1" in everything
    assert "not reachable yet" in caplog.text
    assert "spooled 1 jobs" in caplog.text
    assert "refused the credentials" in everything
    assert everything.count("redis://:***@") >= 10

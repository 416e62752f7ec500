"""Where the tests find real Redis and real Kafka, in this order:

1. ``JOBPIPE_REDIS_URL`` / ``JOBPIPE_KAFKA_BOOTSTRAP`` (bring your own);
2. testcontainers, where a Docker engine answers;
3. the local dev stack (``jobpipe dev up``), started once per test run.

Never a stand-in: a test that claims Redis or Kafka behaviour talks to the real
servers. A missing service skips the test locally and fails it in CI.
"""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_unless_ci(reason: str) -> None:
    """Skip the test locally; in CI a missing service is a failure, never a skip."""
    import pytest

    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def import_unless_ci(module: str) -> None:
    """Import ``module`` (a test extra); skip locally without it, fail in CI."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        skip_unless_ci(f"{module} is not installed ({exc}); install the test extra")


@dataclass(frozen=True)
class Services:
    redis_url: str
    kafka_bootstrap: str


def _docker_answers() -> bool:
    # docker's unix-socket transport leaks its socket when the engine is absent;
    # collect it here, with ResourceWarning off, rather than in a later test
    # (where filterwarnings=error turns it into that test's failure).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            docker.from_env(timeout=2).ping()
            return True
        except Exception:
            return False
        finally:
            gc.collect()


@contextlib.contextmanager
def _from_testcontainers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    redis = RedisContainer("redis:7").with_command(
        "redis-server --appendonly yes --maxmemory-policy noeviction")
    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    with redis, kafka:
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield Services(f"redis://{host}:{port}/0", kafka.get_bootstrap_server())


@contextlib.contextmanager
def _from_dev_stack() -> Iterator[Services]:
    from jobpipe.devstack import DevStack

    stack = DevStack(ROOT / ".jobpipe")
    info = stack.up()
    yield Services(info.redis_url, info.kafka_bootstrap)
    # The dev stack is left running for the next run: starting Kafka costs seconds.
    # CI's runner stops it by PID with `jobpipe dev down`.


@contextlib.contextmanager
def find_services() -> Iterator[Services]:
    """Yield the addresses of a real Redis and a real Kafka."""
    redis_url = os.environ.get("JOBPIPE_REDIS_URL")
    bootstrap = os.environ.get("JOBPIPE_KAFKA_BOOTSTRAP")
    if redis_url and bootstrap:
        yield Services(redis_url, bootstrap)
    elif _docker_answers():
        with _from_testcontainers() as services:
            yield services
    else:
        with _from_dev_stack() as services:
            yield services

"""Fixtures: real services once per run, isolation per test by namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from jobpipe.settings import Settings, load_settings
from jobpipe.wipe import delete_keys
from tests.private_stack import PrivateStack
from tests.redis_modes import CLUSTER, SINGLE, redis_client_for, started_cluster
from tests.services import IN_CI, Services, find_services


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """Addresses of a real Redis and a real Kafka (see tests/services.py)."""
    try:
        with find_services() as found:
            yield found
    except Exception as exc:
        if IN_CI:
            raise
        pytest.skip(f"no Redis/Kafka for integration tests: {exc}")


@pytest.fixture
def redis_mode() -> str:
    """The single Redis, unless the test is parametrized over both modes
    (``tests.redis_modes.BOTH``)."""
    return SINGLE


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis Cluster (3 primaries, 3 replicas), started once per run when a
    test asks for the cluster mode (see tests/redis_modes.py)."""
    with started_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, services: Services, redis_mode: str) -> str:
    """The Redis this test runs on: the single one, or a seed node of the cluster."""
    if redis_mode == CLUSTER:
        return str(request.getfixturevalue("redis_cluster_url"))
    return services.redis_url


@pytest.fixture
def namespace() -> str:
    """A namespace of this test alone: its keys and topics share nothing."""
    return f"t{uuid.uuid4().hex[:10]}"


MakeSettings = Callable[..., Settings]
# TEST_GROUP_PROTOCOL=consumer runs the tests' consumer groups on KIP-848 (not a
# JOBPIPE_* variable: those must name a setting, and CLI children inherit them).
GROUP_PROTOCOL = os.environ.get("TEST_GROUP_PROTOCOL", "")


@pytest.fixture
def make_settings(services: Services, namespace: str, redis_url: str,
                  redis_mode: str) -> MakeSettings:
    """Build settings pointing at the real services, in this test's namespace.

    Usage: ``make_settings(queues={"email": {"partitions": 3}}, bridge={...})``.
    Queues default to one queue ``default`` with 3 partitions and short retry tiers.
    """

    def make(queues: dict[str, dict[str, Any]] | None = None, **sections: Any) -> Settings:
        tree: dict[str, Any] = {
            "namespace": namespace,
            "queues": queues or {"default": {"partitions": 3, "retry_tiers_s": [1, 2]}},
            **sections,
        }
        tree.setdefault("redis", {})["url"] = redis_url
        if redis_mode == CLUSTER:
            tree["redis"]["cluster"] = True
        tree.setdefault("kafka", {})["bootstrap"] = services.kafka_bootstrap
        if GROUP_PROTOCOL:
            tree["kafka"].setdefault("group_protocol", GROUP_PROTOCOL)
        return load_settings(None, overrides=tree, environ={})

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    """Default settings for one test: queue ``default``, 3 partitions."""
    return make_settings()


@pytest.fixture
def redis_client(redis_url: str, redis_mode: str, namespace: str) -> Iterator[redis.Redis]:
    """A client of the real Redis (a cluster client in the cluster mode); the
    test's keys are deleted afterwards."""
    client = redis_client_for(redis_url, redis_mode)
    yield client
    delete_keys(client, namespace)
    client.close()


@pytest.fixture
def kafka_cleanup(services: Services, namespace: str) -> Iterator[None]:
    """Delete the test's topics afterwards so the shared broker stays small."""
    yield
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap,
                         "broker.address.family": "v4"})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{namespace}.")]
    if mine:
        admin.delete_topics(mine, operation_timeout=10)


@pytest.fixture
def make_stack(tmp_path) -> Iterator[Callable[..., PrivateStack]]:
    """Start a private Redis + Kafka that the test may kill, freeze and restart
    (options: ``appendfsync``, ``maxmemory_bytes``); stopped by PID afterwards."""
    stacks: list[PrivateStack] = []

    def make(**options: Any) -> PrivateStack:
        stack = PrivateStack(tmp_path / f"stack{len(stacks)}", **options)
        stacks.append(stack)
        return stack.up()

    yield make
    for stack in stacks:
        stack.down()


CHAOS_TIMEOUT_S = 420


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Chaos tests wait up to a few minutes on their own (with the processes' logs in
    the failure); pytest-timeout's suite default must not cut them short first."""
    for item in items:
        if item.get_closest_marker("chaos") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(CHAOS_TIMEOUT_S))

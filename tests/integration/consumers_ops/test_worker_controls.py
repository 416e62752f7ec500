"""Pause, resume and tenant parking seen by a running Worker (real Kafka and Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from consumers.control import pause_queue, pause_tenant, resume_queue, resume_tenant
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.envelope import decode, encode
from jobpipe.settings import Settings
from jobpipe.topology import QueueSpec
from tests.integration.consumers_ops.conftest import make_job, produce, wait_for, worker_running
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]

PAUSE_DEADLINE_S = 2.0


@pytest.fixture
def worker_settings(make_settings, kafka_cleanup, redis_client) -> Settings:
    settings = make_settings(queues={"default": {"partitions": 2, "shards": 1,
                                                 "retry_tiers_s": [1]}},
                             worker={"control_interval_s": 0.5, "concurrency": 8})
    apply_topics(settings)
    return settings


@pytest.fixture
def executed(worker_settings) -> Iterator[list[str]]:
    """Job ids run by a real Worker on a thread, for the length of the test."""
    with worker_running(worker_settings) as seen:
        yield seen


def _produce(settings: Settings, jobs) -> None:
    produce(settings, names.main_topic(settings.namespace, "default"),
            [(None, encode(j)) for j in jobs])


def test_queue_pause_stops_a_running_worker_and_resume_restarts_it(worker_settings, executed,
                                                                     redis_client):
    ns = worker_settings.namespace
    first = [make_job(task="work") for _ in range(10)]
    _produce(worker_settings, first)
    assert wait_for(lambda: set(executed) >= {j.id for j in first})

    pause_queue(redis_client, ns, "default")
    time.sleep(PAUSE_DEADLINE_S)  # the pause must have reached the worker by now
    second = [make_job(task="work") for _ in range(10)]
    _produce(worker_settings, second)
    assert not wait_for(lambda: any(j.id in executed for j in second), timeout_s=2.0)

    resume_queue(redis_client, ns, QueueSpec("default"))
    assert wait_for(lambda: set(executed) >= {j.id for j in second})


def test_tenant_pause_parks_only_that_tenants_jobs(worker_settings, executed, redis_client):
    ns = worker_settings.namespace
    pause_tenant(redis_client, ns, "default", "acme")
    time.sleep(PAUSE_DEADLINE_S)
    acme = [make_job(task="work", tenant="acme", args={"i": i}) for i in range(5)]
    other = [make_job(task="work", tenant="other") for _ in range(5)]
    _produce(worker_settings, [j for pair in zip(acme, other, strict=True) for j in pair])
    parked = names.parked_key(ns, "default", "acme")
    assert wait_for(lambda: set(executed) >= {j.id for j in other})
    assert wait_for(lambda: redis_client.llen(parked) == len(acme))
    assert not any(j.id in executed for j in acme)

    assert resume_tenant(redis_client, ns, worker_settings.topology.get("default"), "acme") == 5
    ready = names.ready_key(ns, "default", 0, 0)
    back = [decode(redis_client.rpop(ready)) for _ in range(5)]
    # Order within a partition holds; across partitions the worker parks as they come.
    assert {j.id for j in back} == {j.id for j in acme}
    assert redis_client.llen(parked) == 0

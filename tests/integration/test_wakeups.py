"""Hand-offs are event-driven, not timer-driven.

Every idle and poll interval of the pipeline is set to 10 s (the bridge's idle
wait, delayed promotion, heartbeat; the worker's fetch wait, pause and commit
intervals; the retry relay's idle poll). A job pushed into the idle pipeline, a
delayed job coming due and a retry coming due must still run within 2 s: only
a wake-up on the event itself can do that. The bounds are five times apart, so
a loaded machine does not make the test flaky.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import uvloop

from bridge import Bridge
from bridge.wake import wake_client_name
from consumers import App, JobContext, Worker, fetcher
from consumers.control import pause_tenant, resume_tenant
from consumers.retry import relay as retry_relay
from ingest import Producer
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import node_client
from jobpipe.settings import Settings
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]

SLOW_S = 10.0  # every idle/poll interval
WITHIN_S = 2.0  # what an event-driven hand-off must beat
BRIDGE = "wakeups"


@dataclass
class Runs:
    """When each job's attempts started (wall clock), and when a failure was raised."""

    started: dict[str, list[float]] = field(default_factory=dict)
    failed_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, job_id: str, attempt: int = 1) -> float | None:
        with self.lock:
            times = self.started.get(job_id, [])
            return times[attempt - 1] if len(times) >= attempt else None


def _app(runs: Runs) -> App:
    app = App("wakeups")

    @app.task
    async def record(ctx: JobContext, args: Any) -> None:
        with runs.lock:
            runs.started.setdefault(ctx.job_id, []).append(time.time())

    @app.task
    async def fail_once(ctx: JobContext, args: Any) -> None:
        with runs.lock:
            runs.started.setdefault(ctx.job_id, []).append(time.time())
            first = len(runs.started[ctx.job_id]) == 1
            if first:
                runs.failed_at[ctx.job_id] = time.time()
        if first:
            raise RuntimeError("first attempt fails")

    return app


def _wait_for(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.01)


def _bridge_waiting(client: redis.Redis, settings: Settings) -> bool:
    """The bridge is blocked on its wake-up (not between two polls), on the node of
    the queue's wake key (the one Redis, or that key's primary on a cluster)."""
    name = wake_client_name(BRIDGE)
    node = node_client(client, names.wake_key(settings.namespace, "default"))
    return any(c.get("name") == name and c.get("cmd") == "bzpopmin"
               for c in node.client_list())


@pytest.fixture
def slow_settings(make_settings, monkeypatch) -> Settings:
    monkeypatch.setattr(fetcher, "FETCH_WAIT_S", SLOW_S)
    monkeypatch.setattr(retry_relay, "IDLE_POLL_S", SLOW_S)
    return make_settings(
        # Two plain queues: on the cluster their wake keys live on different primaries
        # ({default} and {other} hash to slots 5718 and 11361), so the idle bridge
        # blocks on two nodes at once (bridge.wake).
        queues={**{q: {"partitions": 1, "retry_tiers_s": [1], "retry_jitter": 0}
                   for q in ("default", "other")},
                "fair": {"partitions": 1, "fair": True}},
        bridge={"idle_wait_s": SLOW_S, "delayed_interval_s": SLOW_S,
                "heartbeat_interval_s": SLOW_S, "heartbeat_timeout_s": 3 * SLOW_S},
        worker={"control_interval_s": SLOW_S, "commit_interval_s": SLOW_S})


@pytest.fixture
def pipeline(slow_settings, redis_client, kafka_cleanup) -> Iterator[tuple[Producer, Runs]]:
    """Bridge and worker running on threads, warmed up (the group joined), then idle."""
    apply_topics(slow_settings)
    runs = Runs()
    bridge = Bridge(slow_settings, bridge_id=BRIDGE)
    worker = Worker(slow_settings, _app(runs))
    threads = [threading.Thread(target=bridge.run),
               threading.Thread(target=lambda: uvloop.run(worker.async_run()))]
    for thread in threads:
        thread.start()
    producer = Producer(slow_settings)
    try:
        warm = producer.enqueue("default", "record")
        _wait_for(lambda: runs.first(warm), 120, "the warm-up job")
        _wait_for(lambda: _bridge_waiting(redis_client, slow_settings), 30,
                  "the bridge's idle wait")
        yield producer, runs
    finally:
        producer.close()
        bridge.stop()
        worker.stop()
        for thread in threads:
            thread.join(60)


def test_a_job_pushed_into_an_idle_pipeline_runs_at_once(pipeline):
    producer, runs = pipeline
    sent = time.time()
    job = producer.enqueue("other", "record")  # not the warm-up's queue
    started = _wait_for(lambda: runs.first(job), 60, "the job")
    assert started - sent < WITHIN_S


def test_a_delayed_job_runs_when_it_comes_due(pipeline):
    producer, runs = pipeline
    job = producer.enqueue("default", "record", delay_s=1.0)
    due = time.time() + 1.0
    started = _wait_for(lambda: runs.first(job), 60, "the delayed job")
    assert started - due < WITHIN_S


def test_a_retry_runs_when_it_comes_due(pipeline):
    producer, runs = pipeline
    job = producer.enqueue("default", "fail_once")
    retried = _wait_for(lambda: runs.first(job, attempt=2), 60, "the retry")
    due = runs.failed_at[job] + 1.0  # tier delay 1 s, no jitter
    assert retried - due < WITHIN_S


def test_a_resumed_tenants_job_runs_at_once(pipeline, slow_settings, redis_client):
    producer, runs = pipeline
    ns = slow_settings.namespace
    pause_tenant(redis_client, ns, "fair", "acme")
    job = producer.enqueue("fair", "record", tenant="acme")
    # The push woke the bridge, which left the paused tenant's list alone (or the
    # worker parked the job): it is back in its wait, the wake-up spent.
    _wait_for(lambda: not redis_client.exists(names.wake_key(ns, "fair"))
              and _bridge_waiting(redis_client, slow_settings),
              30, "the bridge's wait after the push")
    assert runs.first(job) is None
    resumed = time.time()
    resume_tenant(redis_client, ns, slow_settings.topology.get("fair"), "acme")
    started = _wait_for(lambda: runs.first(job), 60, "the resumed tenant's job")
    assert started - resumed < WITHIN_S

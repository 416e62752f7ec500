"""Every state a tracked job can be in, reached for real: producer -> Redis -> bridge
-> Kafka -> worker, with cancellation before and during a run."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge import Bridge
from consumers import App, JobContext, Reject, Worker
from consumers.dlq.record import DlqFilter
from consumers.dlq.tools import list_records, replay_records
from ingest import Producer
from jobpipe import jobstatus, names
from jobpipe.envelope import encode
from jobpipe.jobstatus import JobStatus
from jobpipe.metrics import registry
from jobpipe.routing import Routes
from jobpipe.settings import Settings
from tests.conftest import MakeSettings
from tests.integration.bridge.procs import wait_for
from tests.integration.consumers.helpers import make_job, produce_jobs, setup_topics
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]
WAIT_S = 60.0  # a loaded 2-core box: generous, never a timed assertion


def cancelled_count() -> float:
    return registry().get_sample_value("jobpipe_jobs_cancelled_total",
                                       {"queue": "tracked"}) or 0.0


def state_of(producer: Producer, job_id: str, state: str) -> Callable[[], JobStatus | None]:
    def check() -> JobStatus | None:
        status = producer.status(job_id)
        return status if status is not None and status.state == state else None
    return check


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    # No done markers, so a re-delivered job really runs again; no retry relay in
    # the worker below, so a retried job stays "retrying" until the test looks.
    return make_settings(queues={"tracked": {
        "partitions": 1, "shards": 1, "retry_tiers_s": [1], "max_attempts": 2,
        "idempotency_ttl_s": 0, "track_status": True, "keep_results": True}})


@pytest.fixture
def producer(settings: Settings, redis_client: Any, kafka_cleanup: None) -> Iterator[Producer]:
    setup_topics(settings)
    with Producer(settings) as made:
        yield made


class Handlers:
    """Tasks of every fate, and what the test learns from them."""

    def __init__(self) -> None:
        self.app = App("jobstatus-test")
        self.ran: list[str] = []
        self.cleaned_up = threading.Event()
        self.saw_flag = threading.Event()
        app = self.app

        @app.task
        def add(ctx: JobContext, args: list[int]) -> dict[str, int]:
            self.ran.append(ctx.job_id)
            return {"sum": sum(args)}

        @app.task
        def flaky(ctx: JobContext, args: None) -> None:
            raise RuntimeError("first attempt fails")

        @app.task
        def refuse(ctx: JobContext, args: None) -> None:
            raise Reject("bad order")

        self.accept = threading.Event()

        @app.task
        def refused_until_fixed(ctx: JobContext, args: None) -> dict[str, bool]:
            self.ran.append(ctx.job_id)
            if not self.accept.is_set():
                raise Reject("not yet")
            return {"fixed": True}

        @app.task
        def skipped(ctx: JobContext, args: None) -> None:
            self.ran.append(ctx.job_id)

        @app.task
        def sync_long(ctx: JobContext, args: None) -> None:
            deadline = time.monotonic() + WAIT_S
            while not ctx.cancelled and time.monotonic() < deadline:
                time.sleep(0.02)
            if ctx.cancelled:
                self.saw_flag.set()

        @app.task
        async def async_long(ctx: JobContext, args: None) -> None:
            try:
                await asyncio.sleep(WAIT_S)
            except asyncio.CancelledError:
                self.cleaned_up.set()
                raise


def redeliver(settings: Settings, handlers: Handlers, job_id: str, task: str,
              args: Any) -> None:
    """Deliver a job's message again (at-least-once) and wait until it ran once more."""
    runs = handlers.ran.count(job_id)
    produce_jobs(settings, [make_job("tracked", task, args, id=job_id)])
    wait_for(lambda: handlers.ran.count(job_id) == runs + 1, WAIT_S,
             what="the re-delivered job ran")


def start_worker(settings: Settings, app: App) -> tuple[Worker, threading.Thread]:
    worker = Worker(settings, app, retry_relay=False)
    thread = threading.Thread(target=lambda: asyncio.run(worker.async_run()), daemon=True)
    thread.start()
    return worker, thread


def test_a_job_is_found_in_each_state_it_reaches(settings: Settings,
                                                 producer: Producer) -> None:
    handlers = Handlers()
    cancelled_before = cancelled_count()
    add = producer.enqueue("tracked", "add", [1, 2, 3])
    later = producer.enqueue("tracked", "add", [1], delay_s=3600)
    skipped = producer.enqueue("tracked", "skipped")
    status = producer.status(add)
    assert status is not None
    assert status.state == "queued"
    assert status.attempt == 1
    status = producer.status(later)
    assert status is not None
    assert status.state == "delayed"
    assert status.details["run_at"] > time.time_ns() + 3000 * 10**9
    status = producer.cancel(skipped)
    assert status is not None
    assert status.state == "cancelled"

    assert Bridge(settings).run_until_idle(WAIT_S)
    assert state_of(producer, add, "in_kafka")()

    flaky = producer.enqueue("tracked", "flaky")
    refuse = producer.enqueue("tracked", "refuse")
    sync_long = producer.enqueue("tracked", "sync_long")
    async_long = producer.enqueue("tracked", "async_long")
    assert Bridge(settings).run_until_idle(WAIT_S)
    worker, thread = start_worker(settings, handlers.app)
    try:
        done = producer.wait(add, WAIT_S)
        assert done.state == "succeeded"
        assert done.result == {"sum": 6}
        retrying = wait_for(state_of(producer, flaky, "retrying"), WAIT_S, what="flaky retrying")
        assert retrying.attempt == 1
        assert retrying.details["next_at"] > retrying.at_ns
        assert "first attempt fails" in retrying.details["error"]
        failed = wait_for(state_of(producer, refuse, "failed"), WAIT_S, what="refuse failed")
        assert failed.details["reason"] == "rejected"
        assert "bad order" in failed.details["error"]

        for job_id in (sync_long, async_long):
            running = wait_for(state_of(producer, job_id, "running"), WAIT_S,
                               what="a long job running")
            assert running.details["worker"]
            assert running.details["started_at"] > 0
            asked = producer.cancel(job_id)
            assert asked is not None
            assert asked.state == "running"
            assert asked.details["cancel"]
            assert producer.wait(job_id, WAIT_S).state == "cancelled"
        assert handlers.saw_flag.is_set()
        assert handlers.cleaned_up.is_set()

        # The job cancelled before it started reached the worker and was skipped.
        wait_for(lambda: cancelled_count() >= cancelled_before + 3, WAIT_S,
                 what="the skip counted")
        assert skipped not in handlers.ran

        # At-least-once: the finished job is delivered again and runs again, but
        # its record never goes back to "running" nor loses its result.
        before = producer.status(add)
        redeliver(settings, handlers, add, "add", [1, 2, 3])
    finally:
        worker.stop()
        thread.join(WAIT_S)
    after = producer.status(add)
    assert before is not None
    assert after is not None
    assert (after.state, after.at_ns, after.result) == ("succeeded", before.at_ns, {"sum": 6})
    # Cancelled jobs never retry: no later attempt ever ran.
    assert producer.status(sync_long).attempt == 1  # type: ignore[union-attr]



def test_a_replayed_failed_job_runs_again_and_its_record_follows(settings: Settings,
                                                                  producer: Producer) -> None:
    handlers = Handlers()
    spec = settings.topology.get("tracked")
    job_id = producer.enqueue("tracked", "refused_until_fixed")
    assert Bridge(settings).run_until_idle(WAIT_S)
    worker, thread = start_worker(settings, handlers.app)
    try:
        failed = wait_for(state_of(producer, job_id, "failed"), WAIT_S, what="the job failed")
        assert failed.details["reason"] == "rejected"
        wait_for(lambda: list_records(settings, spec, DlqFilter(refs=(job_id,))), WAIT_S,
                 what="the job in the DLQ")
        handlers.accept.set()  # the handler is fixed; replay the job from the DLQ
        assert replay_records(settings, spec, DlqFilter(refs=(job_id,))).replayed == [job_id]
        done = producer.wait(job_id, WAIT_S)
        assert (done.state, done.attempt, done.result) == ("succeeded", 1, {"fixed": True})
        assert handlers.ran.count(job_id) == 2

        # The first run's message delivered again (at-least-once, generation 0): it
        # runs, but the replay's "succeeded" stays as it is.
        redeliver(settings, handlers, job_id, "refused_until_fixed", None)
    finally:
        worker.stop()
        thread.join(WAIT_S)
    after = producer.status(job_id)
    assert after is not None
    assert (after.state, after.at_ns) == ("succeeded", done.at_ns)


def test_a_replayed_job_back_through_the_bridge_is_in_kafka_in_its_generation(
        settings: Settings, producer: Producer, redis_client: Any) -> None:
    # A replayed job parked while its tenant was paused reaches the bridge again on
    # resume; its record still says "failed" of its first run (generation 0) when
    # the replay's own state write was lost.
    spec = settings.topology.get("tracked")
    replayed = make_job("tracked", "add", [1], meta={jobstatus.REPLAYS_META: "1"})
    [(keys, args)] = jobstatus.advance_calls(settings.namespace, spec, [
        jobstatus.Update(replayed.id, jobstatus.FAILED, 1, {"reason": "rejected"})])
    redis_client.eval(jobstatus.ADVANCE_LUA, len(keys), *keys, *args)
    raw = encode(replayed)
    redis_client.rpush(Routes.of(settings.namespace, spec).of_raw(raw, 0)[0], raw)
    plain = producer.enqueue("tracked", "add", [2])  # never replayed: generation 0
    assert Bridge(settings).run_until_idle(WAIT_S)
    for job_id in (replayed.id, plain):
        status = producer.status(job_id)
        assert status is not None
        assert (status.state, status.attempt) == ("in_kafka", 1)
    record = redis_client.hget(names.job_states_key(settings.namespace, "tracked", replayed.id),
                               replayed.id)
    assert record.startswith(b"%d|" % jobstatus.rank(jobstatus.IN_KAFKA, 1, generation=1))

"""Worker behaviour against real Kafka and Redis: order, retries, DLQ, duplicates, bad input."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer

from consumers import App, JobContext, Worker
from jobpipe import names
from jobpipe.connections import kafka_consumer_config
from jobpipe.envelope import decode, encode
from jobpipe.errors import Retry
from tests.integration.consumers.helpers import make_job, produce_jobs, produce_raw, setup_topics
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]


def read_dlq(settings, queue: str, expected: int, timeout_s: float = 20.0) -> list:
    consumer = Consumer(kafka_consumer_config(settings.kafka, "dlq-reader-test"))
    consumer.subscribe([names.dlq_topic(settings.namespace, queue)])
    out: list = []
    deadline = time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        out.extend(m for m in consumer.consume(100, 0.5) if m.error() is None)
    consumer.close()
    return out


def test_same_key_jobs_run_in_order_under_concurrency(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 2, "ordered": True}},
                             worker={"concurrency": 32})
    setup_topics(settings)
    app = App("t")
    runs: dict[str, list[int]] = {}
    active: set[str] = set()
    overlaps: list[str] = []

    @app.task
    async def step(ctx: JobContext, args: dict) -> None:
        if ctx.key in active:
            overlaps.append(ctx.key)
        active.add(ctx.key)
        await asyncio.sleep(0.002)
        runs.setdefault(ctx.key, []).append(args["n"])
        active.discard(ctx.key)

    jobs = [make_job("default", "step", {"n": n}, key=f"k{k}") for n in range(30) for k in range(4)]
    produce_jobs(settings, jobs)
    assert Worker(settings, app).run_until_idle(60)
    assert not overlaps
    assert runs == {f"k{k}": list(range(30)) for k in range(4)}


def test_failing_twice_then_succeeding_passes_two_retry_tiers(make_settings, redis_client,
                                                              kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 1, "retry_tiers_s": [1, 2]}})
    setup_topics(settings)
    app = App("t")
    attempts: list[tuple[int, float]] = []

    @app.task
    async def flaky(ctx: JobContext, args: dict) -> None:
        attempts.append((ctx.attempt, time.monotonic()))
        if ctx.attempt < 3:
            raise ConnectionError(f"boom {ctx.attempt}")

    produce_jobs(settings, [make_job("default", "flaky")])
    assert Worker(settings, app).run_until_idle(60)
    assert [a for a, _ in attempts] == [1, 2, 3]
    first_gap, second_gap = attempts[1][1] - attempts[0][1], attempts[2][1] - attempts[1][1]
    assert first_gap >= 0.9
    assert second_gap >= 1.9


def test_poison_job_is_dead_lettered_while_others_flow(make_settings, redis_client,
                                                       kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 2, "retry_tiers_s": [1],
                                                 "max_attempts": 2}})
    setup_topics(settings)
    app = App("t")
    done: list[str] = []

    @app.task
    async def work(ctx: JobContext, args: dict) -> None:
        if args.get("poison"):
            raise ValueError("poison")
        done.append(ctx.job_id)

    poison = make_job("default", "work", {"poison": True}, max_attempts=2)
    good = [make_job("default", "work", {"i": i}) for i in range(50)]
    produce_jobs(settings, [poison, *good])
    assert Worker(settings, app).run_until_idle(60)
    assert sorted(done) == sorted(j.id for j in good)
    [record] = read_dlq(settings, "default", 1)
    headers = {k: v.decode() for k, v in record.headers()}
    assert headers["jp-reason"] == "exhausted"
    job = decode(record.value())
    assert job.id == poison.id
    assert job.attempt == 2
    assert [e["type"] for e in job.errors] == ["ValueError", "ValueError"]


@pytest.mark.parametrize(("options", "idem", "own_marker"), [
    ({}, None, True),  # untracked: the done marker
    ({"track_status": True}, None, False),  # tracked: the "succeeded" record is the marker
    ({"track_status": True}, "once", True),  # an explicit key names more than this id
    ({"track_status": True, "status_ttl_s": 60}, None, True),  # the record goes too soon
], ids=["untracked", "record", "explicit-key", "short-record"])
def test_a_duplicate_is_skipped_by_its_done_marker_or_its_record(
        make_settings, redis_client, kafka_cleanup, options, idem, own_marker):
    settings = make_settings(queues={"default": {"partitions": 1, **options}})
    setup_topics(settings)
    app = App("t")
    runs: list[str] = []

    @app.task
    async def once(ctx: JobContext, args: dict) -> None:
        runs.append(ctx.job_id)

    job = make_job("default", "once", idem=idem)
    produce_jobs(settings, [job])
    assert Worker(settings, app).run_until_idle(60)
    produce_jobs(settings, [job, job])  # delivered twice more (e.g. after crashes)
    assert Worker(settings, app).run_until_idle(60)
    assert runs == [job.id]
    ns = settings.namespace
    if idem is None:  # in the hash of the ids made near it in time, the id its field
        assert redis_client.hexists(names.done_ids_key(ns, "default", job.id), job.id) == own_marker
    else:
        assert redis_client.exists(names.done_key(ns, "default", idem)) == own_marker


def test_bad_input_is_dead_lettered_with_reason_while_valid_jobs_flow(make_settings,
                                                                      redis_client,
                                                                      kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 1}})
    setup_topics(settings)
    app = App("t")
    done: list[str] = []

    @app.task
    async def ok(ctx: JobContext, args: dict) -> None:
        done.append(ctx.job_id)

    topic = names.main_topic(settings.namespace, "default")
    wrong_type = encode(make_job("default", "ok")).replace(b'"attempt":1', b'"attempt":"1"')
    bad = [(b"k1", b"not json"), (None, wrong_type), (None, b"[1,2]"),
           (None, encode(make_job("default", "nope")))]
    valid = [make_job("default", "ok", {"i": i}) for i in range(20)]
    produce_raw(settings, topic, bad)
    produce_jobs(settings, valid)
    assert Worker(settings, app).run_until_idle(60)
    assert sorted(done) == sorted(j.id for j in valid)
    records = read_dlq(settings, "default", 4)
    reasons = sorted(dict(r.headers())["jp-reason"].decode() for r in records)
    assert reasons == ["invalid_json", "not_an_object", "unknown_task", "wrong_type"]
    raw = next(r for r in records if dict(r.headers())["jp-reason"] == b"invalid_json")
    assert raw.value() == b"not json"
    assert raw.key() == b"k1"


def test_async_job_over_its_time_limit_is_cancelled_and_retried(make_settings, redis_client,
                                                                kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 1, "retry_tiers_s": [1]}})
    setup_topics(settings)
    app = App("t")
    attempts: list[int] = []

    @app.task("slow", timeout_s=0.3)
    async def slow(ctx: JobContext, args: dict) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            await asyncio.sleep(30)

    produce_jobs(settings, [make_job("default", "slow")])
    assert Worker(settings, app).run_until_idle(60)
    assert attempts == [1, 2]


def test_retry_delay_and_follow_up_jobs(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"default": {"partitions": 1, "retry_tiers_s": [1, 2]}})
    setup_topics(settings)
    app = App("t")
    seen: list[tuple[str, int]] = []

    @app.task
    async def parent(ctx: JobContext, args: dict) -> None:
        seen.append(("parent", ctx.attempt))
        if ctx.attempt == 1:
            raise Retry(delay_s=1.5)  # smallest tier >= 1.5 is 2s
        ctx.enqueue("default", "child", {"from": ctx.job_id})

    @app.task
    def child(ctx: JobContext, args: dict) -> None:
        seen.append(("child", ctx.attempt))

    produce_jobs(settings, [make_job("default", "parent")])
    start = time.monotonic()
    assert Worker(settings, app).run_until_idle(60)
    assert seen == [("parent", 1), ("parent", 2), ("child", 1)]
    assert time.monotonic() - start >= 2.0

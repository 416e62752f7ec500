"""Redis killed and restarted from its AOF; Redis full (noeviction)."""

from __future__ import annotations

import time

import pytest
import redis

from jobpipe import names
from jobpipe.errors import JobpipeError
from loadtest.ledger import ACCEPTED, EXECUTED, LedgerWriter, read_role
from tests.integration.proof.harness import Figures, run_in_thread, wait_quiet

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


# everysec fsyncs once a second, and a slow fsync may hold writes back up to 2 s
# (redis.io, "Redis persistence"): what was acknowledged longer ago is on disk.
FSYNC_WINDOW_S = 2.0


def _acknowledged(p) -> set[str]:
    return set(read_role(p.ledger_dir, ACCEPTED)[0])


@pytest.mark.parametrize("appendfsync", ["everysec", "always"])
def test_redis_killed_and_restarted_from_its_aof(make_stack, make_pipeline, appendfsync):
    jobs = 10_000
    stack = make_stack(appendfsync=appendfsync)
    p = make_pipeline(stack, ingest={"deadline_s": 1.0})
    p.start_bridge()
    p.start_worker()
    warm_up = 500
    p.produce(warm_up)
    p.wait_for(lambda: p.report().executed >= warm_up, 180, "the pipeline to run jobs")
    producer, result = run_in_thread(lambda: p.produce(jobs - warm_up, rate_per_s=jobs / 6))
    p.wait_for(lambda: p.accepted() > jobs // 5, 60, "a fifth of the jobs to be acknowledged")
    before_window = _acknowledged(p)
    window_opened = time.monotonic()
    p.wait_for(lambda: time.monotonic() - window_opened >= FSYNC_WINDOW_S,
               FSYNC_WINDOW_S + 10, "one fsync window of load before the kill")
    assert producer.is_alive(), "the producer was done before the kill: nothing at stake"
    stack.kill_redis()
    time.sleep(2)  # the fault: Redis stays down while producers keep trying
    # Nothing is acknowledged while Redis is down, and the producer's ledger is
    # written every 0.2 s: this is everything acknowledged before the kill.
    in_window = _acknowledged(p) - before_window
    stack.start_redis()
    producer.join()
    assert "error" not in result, result
    report = wait_quiet(p, stable_s=10, timeout_s=120)
    figures = Figures(f"redis kill -9, appendfsync {appendfsync}", report,
                      {"producer_errors": result["value"],
                       "acknowledged_in_last_fsync_window": len(in_window)})
    print(figures.line())
    # A kill -9 of the process keeps what reached the page cache, so this run
    # usually loses nothing; the bound is what a crash of the machine may cost.
    lost = _acknowledged(p) - set(read_role(p.ledger_dir, EXECUTED)[0])
    assert lost <= in_window, sorted(lost - in_window)[:20]
    if appendfsync == "always":
        assert report.lost == 0, report.lost_ids
    # "unexpected" here = jobs Redis wrote although the producer got an error
    # (the reply was lost with the process): at-least-once, so they ran.
    assert report.unexpected <= 500 * result["value"]["unavailable"]


def _enqueue_rate(producer, calls: int, batch: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        if batch == 1:
            producer.enqueue("default", "record", {"n": 1})
        else:
            producer.enqueue_many("default", "record", [{"n": 1}] * batch)
    return calls * batch / (time.perf_counter() - started)


def test_appendfsync_always_throughput_cost(make_pipeline, calm_stack):
    """The rates are reported, not asserted (speed belongs to benchmarks); what is
    asserted is that each was measured in its mode and counts jobs that landed."""
    from ingest import Producer

    p = make_pipeline(calm_stack, queue={"max_backlog": 10_000_000})  # no bridge: jobs stay
    client = redis.Redis.from_url(p.stack.redis_url)
    rates = {}
    try:
        with Producer(p.settings) as producer:
            for mode in ("everysec", "always"):
                client.config_set("appendfsync", mode)
                assert client.config_get("appendfsync") == {"appendfsync": mode}
                _enqueue_rate(producer, 200, 1)  # warm up
                before = _backlog(p, client)
                rates[f"{mode}_single_per_s"] = round(_enqueue_rate(producer, 2000, 1))
                rates[f"{mode}_batch100_per_s"] = round(_enqueue_rate(producer, 100, 100))
                assert _backlog(p, client) - before == 2000 + 100 * 100
    finally:
        client.config_set("appendfsync", "everysec")  # the stack is shared: as found
        client.close()
    print("[appendfsync cost] " + " ".join(f"{k}={v}" for k, v in rates.items()))


def _backlog(p, client: redis.Redis) -> int:
    """Jobs waiting in the queue's ready lists (Redis only: no bridge runs here)."""
    spec = p.settings.topology.queues["default"]
    return sum(client.llen(names.ready_key(p.settings.namespace, "default", shard, level))
               for level in spec.levels for shard in range(spec.shards))


@pytest.mark.parametrize("limit", ["maxmemory", "max_backlog"])
def test_full_redis_refuses_clearly_and_recovers_after_draining(make_stack, make_pipeline,
                                                               calm_stack, limit):
    if limit == "maxmemory":
        stack = make_stack(maxmemory_bytes=8 * 1024 * 1024)
        p = make_pipeline(stack, queue={"max_backlog": 10_000_000}, ingest={"deadline_s": 1.0})
    else:
        p = make_pipeline(calm_stack, queue={"max_backlog": 5_000}, ingest={"deadline_s": 1.0})
    from ingest import Producer

    refusal: Exception | None = None
    with Producer(p.settings) as producer, LedgerWriter(p.ledger_dir, ACCEPTED) as ledger:
        for n in range(2_000):  # 1M jobs at most; the limit comes long before
            try:
                ledger.record(producer.enqueue_many("default", "record",
                                                    [{"n": n, "pad": "x" * 100}] * 500))
            except Exception as exc:  # the type is checked below, after recovery
                refusal = exc
                break
    assert refusal is not None, "Redis never refused a job"
    accepted_when_full = p.accepted()
    # The bridge drains the backlog; workers run it; the intake opens again.
    p.start_bridge()
    p.start_worker()
    p.wait_all_done(timeout_s=240)
    with Producer(p.settings) as producer, LedgerWriter(p.ledger_dir, ACCEPTED) as ledger:
        ledger.record(producer.enqueue_many("default", "record", [{"n": -1}] * 500))
    report = p.wait_all_done(timeout_s=60)
    print(Figures(f"redis full ({limit})", report,
                  {"refused_with": type(refusal).__name__,
                   "accepted_when_full": accepted_when_full}).line())
    assert report.lost == 0, report.lost_ids
    assert report.unexpected == 0
    assert isinstance(refusal, JobpipeError), (
        f"a full Redis must surface as a typed JobpipeError (QueueFull), got "
        f"{type(refusal).__module__}.{type(refusal).__name__}: {refusal}")
    assert "\n" not in str(refusal)

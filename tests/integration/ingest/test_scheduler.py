"""Periodic jobs against real Redis and Kafka: racing schedulers, one killed, and the
missed-fire policies after downtime."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import redis

from ingest.scheduler import Scheduler
from ingest.schedules import FIRE_KEY_PREFIX
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.devstack import free_port
from jobpipe.envelope import decode
from jobpipe.settings import Settings
from tests.integration.bridge.procs import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
QUEUE = {"default": {"partitions": 1, "shards": 2, "retry_tiers_s": [1, 2]}}


def queued_fires(client: redis.Redis, settings: Settings) -> Counter[int]:
    """Fire time -> how many jobs of it wait in the ready lists."""
    spec = settings.topology.get("default")
    found: Counter[int] = Counter()
    for shard in range(spec.shards):
        for raw in client.lrange(names.ready_key(settings.namespace, "default", shard), 0, -1):
            idem = decode(raw).idem or ""
            assert idem.startswith(f"{FIRE_KEY_PREFIX}:tick:"), idem
            found[int(idem.rpartition(":")[2])] += 1
    return found


def start_scheduler(settings: Settings, config: Path, log: Path,
                    metrics_port: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "JOBPIPE_CONFIG": str(config), "JOBPIPE_NAMESPACE": settings.namespace,
           "JOBPIPE_REDIS_URL": settings.redis.url,
           "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    flags = [] if metrics_port is None else ["--metrics-port", str(metrics_port)]
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "jobpipe", "scheduler", *flags],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def scraped_fires(port: int) -> float:
    """``jobpipe_schedule_fires_total`` of schedule ``tick`` served on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    found = re.search(r'^jobpipe_schedule_fires_total\{schedule="tick"\} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


def test_three_schedulers_one_killed_enqueue_each_tick_once_and_it_runs_once(
        make_settings, redis_client, kafka_cleanup, tmp_path, namespace, services,
        monkeypatch):
    settings = make_settings(queues=QUEUE, schedules={"tick": {
        "queue": "default", "task": "record", "args": {}, "interval_s": 1}})
    config = tmp_path / "jobpipe.toml"
    config.write_text('[queues.default]\npartitions = 1\nshards = 2\nretry_tiers_s = [1, 2]\n'
                      '[schedules.tick]\nqueue = "default"\ntask = "record"\nargs = {}\n'
                      'interval_s = 1\n')
    log = tmp_path / "schedulers.log"
    ports = [None, free_port(), free_port()]  # the survivors serve /metrics
    procs = [start_scheduler(settings, config, log, port) for port in ports]
    try:
        wait_for(lambda: len(queued_fires(redis_client, settings)) >= 3, 60,
                 interval_s=0.1, what=f"three ticks enqueued (log: {log})")
        procs[0].kill()  # SIGKILL, possibly mid-pass
        procs[0].wait()
        at_kill = max(queued_fires(redis_client, settings))
        wait_for(lambda: max(queued_fires(redis_client, settings)) >= at_kill + 5000, 60,
                 interval_s=0.1, what="five more ticks after the kill")
        # Every tick after the kill was enqueued by a survivor, which counts it
        # (just after its push: poll for the count).
        after_kill = len([t for t in queued_fires(redis_client, settings) if t > at_kill])
        wait_for(lambda: sum(scraped_fires(p) for p in ports if p) >= after_kill, 60,
                 interval_s=0.2, what="the survivors' fires on /metrics")
    finally:
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    assert [p.returncode for p in procs[1:]] == [0, 0], log.read_text()

    fires = queued_fires(redis_client, settings)
    assert set(fires.values()) == {1}, {t: n for t, n in fires.items() if n != 1}
    ticks = sorted(fires)
    assert ticks == list(range(ticks[0], ticks[-1] + 1000, 1000))  # none missing
    assert ticks[-1] >= at_kill + 5000
    assert after_kill >= 5

    # Through Kafka to a worker: each tick's job runs once.
    from consumers import Worker
    from tests.integration.consumers import recording_app

    prefix = f"{namespace}:rec"
    monkeypatch.setenv("REC_PREFIX", prefix)
    monkeypatch.setenv("REC_REDIS_URL", services.redis_url)
    ids = {redis_client.get(names.unique_key(namespace, "default",
                                             f"{FIRE_KEY_PREFIX}:tick:{t}")) for t in ticks}
    apply_topics(settings)
    from bridge import Bridge

    assert Bridge(settings).run_until_idle(60)
    assert Worker(settings, recording_app.app).run_until_idle(60)
    runs = {k: int(v) for k, v in redis_client.hgetall(f"{prefix}:runs").items()}
    assert runs == {job_id: 1 for job_id in ids}
    assert len(runs) == len(ticks)


@pytest.mark.parametrize(("policy", "missed_runs"), [("skip", 0), ("run_once", 1)])
def test_after_downtime_missed_fire_times_are_skipped_or_run_once(
        make_settings, redis_client, policy, missed_runs):
    grace_s = 5
    settings = make_settings(queues=QUEUE, schedules={"tick": {
        "queue": "default", "task": "record", "interval_s": 60, "grace_s": grace_s,
        "misfire": policy}})
    last_key = names.schedules_last_key(settings.namespace)
    seconds, _ = redis_client.time()
    down_from_ms = (seconds - 3600) * 1000
    redis_client.zadd(last_key, {"tick": down_from_ms})  # down for an hour
    before = scheduler_metrics()
    scheduler = Scheduler(settings)
    try:
        scheduler.run_pass()
        decided = int(redis_client.zscore(last_key, "tick"))
        first = queued_fires(redis_client, settings)
        after_first = scheduler_metrics()
        scheduler.run_pass()  # a second pass right after adds nothing it already decided
        second = queued_fires(redis_client, settings)
    finally:
        scheduler.close()
    missed = [t for t in first if t <= decided - grace_s * 1000]
    assert len(missed) == missed_runs
    if missed:
        assert decided - grace_s * 1000 - missed[0] < 60_000  # the latest of them
    assert set(first.values()) <= {1}
    assert {t: n for t, n in second.items() if t in first} == first

    # Metrics: every minute of the hour but those within the grace was missed.
    minutes_missed = (decided - grace_s * 1000) // 60_000 - down_from_ms // 60_000
    assert minutes_missed in (59, 60)
    fired_then = delta(before, after_first)
    assert fired_then == {"missed": minutes_missed, "skipped": minutes_missed - missed_runs,
                          "fires": len(first)}
    fired_in_all = delta(before, scheduler_metrics())
    assert fired_in_all["missed"] == minutes_missed  # not counted twice
    assert fired_in_all["fires"] == len(second)


def scheduler_metrics() -> dict[str, float]:
    """The scheduler counters of schedule ``tick`` in this process."""
    from jobpipe.metrics import registry

    return {kind: registry().get_sample_value(f"jobpipe_schedule_{kind}_total",
                                              {"schedule": "tick"}) or 0.0
            for kind in ("fires", "missed", "skipped")}


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {kind: after[kind] - before[kind] for kind in before}

"""kill -9 of a bridge mid-move, then a restart: every job reaches Kafka at least once."""

from __future__ import annotations

import signal

import pytest

from jobpipe import names
from jobpipe.admin import apply_topics
from tests.integration.bridge.jobs import consume, fill, id_counts
from tests.integration.bridge.procs import (
    inflight_total,
    kill_9_mid_move_then_drain,
    ready_total,
    start_bridge,
    wait_for,
    write_config,
)
from tests.redis_modes import BOTH_CLUSTER_SLOW

pytestmark = [pytest.mark.integration, pytest.mark.chaos, BOTH_CLUSTER_SLOW]
QUEUES = {"q": {"partitions": 3, "shards": 4}}


def _kill_mid_move_and_restart(n_jobs, make_settings, redis_client, tmp_path):
    # Small batches, few in flight: the move lasts hundreds of Kafka round trips, with
    # jobs in the in-flight lists nearly all the while (a fast bridge moved 20,000
    # jobs of 500-job batches between two looks of the test).
    bridge_cfg = {"batch_size": 50, "max_batches_in_flight": 2}
    settings = make_settings(queues=QUEUES, bridge=bridge_cfg)
    apply_topics(settings)
    config = write_config(tmp_path / "jobpipe.toml", QUEUES, bridge_cfg)
    ids = fill(redis_client, settings, "q", n_jobs)
    stranded = kill_9_mid_move_then_drain(settings, config, redis_client, "q", n_jobs,
                                          tmp_path / "bridge.log")
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                               expect=n_jobs, timeout_s=120))
    missing = set(ids) - set(counts)
    duplicates = sum(c - 1 for c in counts.values())
    print(f"\nkill -9 mid-move of {n_jobs} jobs: {stranded} were in flight at the kill; "
          f"lost {len(missing)}, duplicates {duplicates}")
    assert not missing
    assert set(counts) == set(ids)
    assert duplicates <= stranded
    return duplicates


def test_kill_9_mid_move_then_restart_loses_nothing(make_settings, redis_client, kafka_cleanup,
                                                    tmp_path):
    _kill_mid_move_and_restart(20_000, make_settings, redis_client, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_mid_move_of_200k_then_restart_loses_nothing(make_settings, redis_client,
                                                            kafka_cleanup, tmp_path):
    _kill_mid_move_and_restart(200_000, make_settings, redis_client, tmp_path)


def test_processes_flag_runs_several_bridges_and_sigterm_exits_0(make_settings, redis_client,
                                                                 kafka_cleanup, tmp_path):
    settings = make_settings(queues=QUEUES)
    apply_topics(settings)
    config = write_config(tmp_path / "jobpipe.toml", QUEUES)
    ids = fill(redis_client, settings, "q", 10_000)
    log = tmp_path / "bridge.log"
    proc = start_bridge(settings, config, "--processes", "2", "--bridge-id", "duo",
                        log_path=log)
    try:
        wait_for(lambda: ready_total(redis_client, settings, "q") == 0
                 and inflight_total(redis_client, settings, "q") == 0, 120, interval_s=0.2)
        live = wait_for(lambda: redis_client.zrange(names.bridges_key(settings.namespace), 0, -1),
                        30)
        assert sorted(m.decode().split(".")[0] for m in live) == ["duo-0", "duo-1"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                               expect=len(ids)))
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    assert redis_client.zrange(names.bridges_key(settings.namespace), 0, -1) == []

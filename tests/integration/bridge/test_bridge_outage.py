"""The broker stopped for 12 s mid-run and started again: the bridge loses nothing."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from bridge import Bridge
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.settings import load_settings
from tests.integration.bridge.jobs import consume, fill, id_counts
from tests.integration.bridge.procs import inflight_total, ready_total, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
OUTAGE_S = 12.0
LOG_INTERVAL_S = 5.0  # "Kafka unreachable" at most this often


@pytest.mark.timeout(300)
def test_broker_stopped_mid_run_loses_nothing(make_stack, namespace, caplog):
    private_stack = make_stack()
    settings = load_settings(None, environ={}, overrides={
        "namespace": namespace,
        "queues": {"q": {"partitions": 3, "shards": 2}},
        "redis": {"url": private_stack.redis_url},
        "kafka": {"bootstrap": private_stack.kafka_bootstrap},
        "bridge": {"batch_size": 500, "max_batches_in_flight": 4,
                   "log_interval_s": LOG_INTERVAL_S}})
    apply_topics(settings)
    client = redis.Redis.from_url(settings.redis.url)
    ids = fill(client, settings, "q", 10_000)
    bridge = Bridge(settings, bridge_id="steady")
    thread = threading.Thread(target=bridge.run)
    caplog.set_level(logging.INFO, logger="bridge")
    thread.start()
    try:
        wait_for(lambda: bridge.acked_jobs.get("q", 0) >= 2000, 60, what="first jobs")
        stopped_at = time.monotonic()
        private_stack.stop_kafka()
        ids += fill(client, settings, "q", 10_000)  # producers carry on; Redis buffers
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        acked_during = bridge.acked_jobs["q"]
        buffered = ready_total(client, settings, "q")
        in_flight = inflight_total(client, settings, "q")
        assert buffered > 0
        assert in_flight <= 4 * 500  # taking stopped at the in-flight bound
        private_stack.start_kafka()
        wait_for(lambda: ready_total(client, settings, "q") == 0
                 and inflight_total(client, settings, "q") == 0, 120, interval_s=0.2,
                 what="drained after the broker came back")
        unreachable_s = time.monotonic() - stopped_at  # longer than OUTAGE_S on a slow box
    finally:
        bridge.stop()
        thread.join(60)
    counts = id_counts(consume(settings, [names.main_topic(namespace, "q")], expect=len(ids),
                               timeout_s=120))
    lost = set(ids) - set(counts)
    warnings = [r for r in caplog.records if "Kafka unreachable" in r.getMessage()]
    print(f"\nbroker down {OUTAGE_S:.0f} s: {buffered} jobs buffered in Redis, {in_flight} in "
          f"flight, lost {len(lost)}, duplicates {sum(c - 1 for c in counts.values())}, "
          f"'Kafka unreachable' logged {len(warnings)} times; acked before stop {acked_during}")
    assert not lost
    # once per log_interval_s while Kafka was unreachable, not once per job
    assert 1 <= len(warnings) <= unreachable_s // LOG_INTERVAL_S + 1
    client.close()

"""``jobpipe stats --once --json`` against real Redis and Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_consumer_config, kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from tests.redis_modes import BOTH_CLUSTER_SLOW, redis_environ

pytestmark = pytest.mark.integration


def _job(**kw) -> bytes:
    return encode(Job(id=new_job_id(), queue="email", task="send", args={}, enqueued_at=now_ns(),
                      **kw))


@BOTH_CLUSTER_SLOW
def test_stats_once_json_reports_redis_backlog_kafka_lag_and_dlq(
        make_settings, services, namespace, redis_client, kafka_cleanup, tmp_path):
    settings = make_settings(queues={"email": {"partitions": 2, "shards": 2,
                                               "retry_tiers_s": [1]}})
    ns, r = namespace, redis_client
    apply_topics(settings)
    r.lpush(names.ready_key(ns, "email", 0), *[_job() for _ in range(3)])
    r.lpush(names.ready_key(ns, "email", 1), *[_job() for _ in range(2)])
    r.zadd(names.delayed_key(ns, "email"), {_job(): 1, _job(): 2})
    inflight = [names.inflight_key(ns, "email", "b1"), names.inflight_key(ns, "email", "b2")]
    r.lpush(inflight[0], _job())
    r.lpush(inflight[1], _job(), _job())
    r.sadd(names.inflight_index_key(ns, "email"), *inflight)  # as a bridge's take does
    r.lpush(names.inflight_key(ns, "email", "b3"), _job())  # not indexed: never counted
    r.lpush(names.dead_key(ns, "email"), b"refused")
    r.sadd(names.paused_queues_key(ns), "email")
    r.sadd(names.paused_tenants_key(ns, "email"), "acme")
    r.lpush(names.parked_key(ns, "email", "acme"), _job(tenant="acme"), _job(tenant="acme"))

    main, dlq = names.main_topic(ns, "email"), names.dlq_topic(ns, "email")
    producer = Producer(kafka_producer_config(settings.kafka))
    for _ in range(4):
        producer.produce(main, _job(), partition=0)
    for _ in range(2):
        producer.produce(dlq, _job(), partition=1)
    assert producer.flush(30) == 0
    group = names.group_id(ns, "workers")
    committer = Consumer(kafka_consumer_config(settings.kafka, group))
    committer.commit(offsets=[TopicPartition(main, 0, 3)], asynchronous=False)
    committer.close()

    config = tmp_path / "jobpipe.toml"
    config.write_text(f'namespace = "{ns}"\n[queues.email]\npartitions = 2\nshards = 2\n'
                      "retry_tiers_s = [1]\n")
    env = {**os.environ, **redis_environ(settings),
           "JOBPIPE_KAFKA_BOOTSTRAP": services.kafka_bootstrap}
    result = subprocess.run([sys.executable, "-m", "jobpipe", "-c", str(config), "stats",
                             "--once", "--json"], capture_output=True, text=True, env=env,
                            timeout=90, check=False)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    email = doc["queues"]["email"]
    assert email["redis"] == {"ready": 5, "delayed": 2, "inflight": 3, "dead": 1, "parked": 2,
                              "backlog": 12, "tenants_waiting": 0}
    assert email["kafka"]["lag"][group] == {main: 1}
    assert email["kafka"]["lag_total"][names.group_id(ns, "retry")] == 0
    assert email["kafka"]["dlq_size"] == 2
    assert email["kafka"]["produced_total"] == 4
    assert email["paused"] is True
    assert email["paused_tenants"] == ["acme"]
    assert email["rates"] is None
    assert doc["namespace"] == ns

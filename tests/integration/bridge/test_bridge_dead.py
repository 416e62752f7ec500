"""Permanent produce errors go to the dead list; ``jobpipe bridge dead`` shows and requeues."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bridge import Bridge, count_dead, list_dead
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.cli import cli
from tests.integration.bridge.jobs import consume, fill, id_counts, make_job, push
from tests.integration.bridge.procs import write_config
from tests.redis_modes import BOTH_CLUSTER_SLOW, redis_environ

pytestmark = [pytest.mark.integration, BOTH_CLUSTER_SLOW]
SHORT_METADATA = {"producer": {"topic.metadata.propagation.max.ms": "1500"}}


def test_a_message_too_large_goes_to_the_dead_list(make_settings, redis_client, kafka_cleanup):
    settings = make_settings(queues={"q": {"partitions": 3, "shards": 1}})
    apply_topics(settings)
    ids = fill(redis_client, settings, "q", 200)
    big = push(redis_client, settings, [make_job("q", size_bytes=1_500_000)])
    ids += fill(redis_client, settings, "q", 200)
    assert Bridge(settings).run_until_idle(60)
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "q")],
                               expect=len(ids)))
    assert set(counts) == set(ids)
    [record] = list_dead(redis_client, settings, "q")
    assert record.reason == "message_too_large"
    assert big[0].encode() in record.job
    assert record.source == names.ready_key(settings.namespace, "q", 0, 0)


def test_unknown_topic_is_dead_and_requeue_returns_it(make_settings, redis_client, kafka_cleanup,
                                                      tmp_path):
    queues = {"ghost": {"partitions": 1, "shards": 1}}
    settings = make_settings(queues=queues, kafka=SHORT_METADATA)
    ids = fill(redis_client, settings, "ghost", 3)  # no topics applied yet
    assert Bridge(settings).run_until_idle(60)
    assert count_dead(redis_client, settings, "ghost") == 3
    assert {r.reason for r in list_dead(redis_client, settings, "ghost")} == {"unknown_topic"}
    config = write_config(tmp_path / "jobpipe.toml", queues)
    env = {"JOBPIPE_NAMESPACE": settings.namespace, **redis_environ(settings),
           "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    runner = CliRunner()
    shown = runner.invoke(cli, ["-c", str(config), "bridge", "dead", "ls", "ghost"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "3 dead jobs in ghost" in shown.output
    assert shown.output.count("unknown_topic") == 3
    apply_topics(settings)
    requeued = runner.invoke(cli, ["-c", str(config), "bridge", "dead", "requeue", "ghost"],
                             env=env)
    assert requeued.exit_code == 0, requeued.output
    assert "requeued 3 jobs" in requeued.output
    assert count_dead(redis_client, settings, "ghost") == 0
    assert Bridge(settings).run_until_idle(60)
    counts = id_counts(consume(settings, [names.main_topic(settings.namespace, "ghost")],
                               expect=3))
    assert set(counts) == set(ids)
    assert count_dead(redis_client, settings, "ghost") == 0


def test_dead_ls_of_an_unknown_queue_is_one_clear_error(make_settings, tmp_path):
    settings = make_settings()
    config = write_config(tmp_path / "jobpipe.toml", {"default": {}})
    result = CliRunner().invoke(cli, ["-c", str(config), "bridge", "dead", "ls", "nope"],
                                env={"JOBPIPE_REDIS_URL": settings.redis.url})
    assert result.exit_code != 0
    assert "unknown queue 'nope'" in str(result.exception)

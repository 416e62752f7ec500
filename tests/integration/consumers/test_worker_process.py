"""Worker processes: contiguous commits across a crash, kill -9, SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from consumers import Worker
from jobpipe import jobstatus, names
from jobpipe.connections import kafka_consumer_config
from tests.integration.consumers import recording_app
from tests.integration.consumers.helpers import (
    make_job,
    produce_jobs,
    setup_topics,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.integration


def committed(settings, partitions: int) -> list[int]:
    consumer = Consumer(kafka_consumer_config(settings.kafka,
                                              names.group_id(settings.namespace, "workers")))
    topic = names.main_topic(settings.namespace, "default")
    tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    consumer.close()
    return [tp.offset for tp in tps]


@pytest.fixture
def prefix(namespace, services, monkeypatch):
    value = f"{namespace}:rec"
    monkeypatch.setenv("REC_PREFIX", value)
    monkeypatch.setenv("REC_REDIS_URL", services.redis_url)
    return value


def test_slow_job_holds_the_commit_and_a_crash_redelivers_only_unfinished(
        make_settings, redis_client, kafka_cleanup, tmp_path, prefix):
    settings = make_settings(queues={"default": {"partitions": 1}})
    setup_topics(settings)
    jobs = [make_job("default", "record", {"hold": i == 2}) for i in range(10)]
    produce_jobs(settings, jobs)
    proc = start_worker(settings, tmp_path, prefix)
    try:
        wait_for(lambda: redis_client.scard(f"{prefix}:done") == 9)
        wait_for(lambda: committed(settings, 1) == [2], 15)  # job 2 still runs: commit waits
    finally:
        proc.kill()  # kill -9
        proc.wait()
    redis_client.set(f"{prefix}:release", 1)
    assert Worker(settings, recording_app.app).run_until_idle(60)
    runs = {k.decode(): int(v) for k, v in redis_client.hgetall(f"{prefix}:runs").items()}
    assert runs == {j.id: 1 for j in jobs}  # 3..9 were redelivered but skipped as done
    assert committed(settings, 1) == [10]


def test_kill_9_mid_run_loses_nothing(make_settings, redis_client, kafka_cleanup, tmp_path,
                                      prefix):
    settings = make_settings(queues={"default": {"partitions": 3}})
    setup_topics(settings)
    jobs = [make_job("default", "record", {"sleep_s": 0.002}) for _ in range(1500)]
    produce_jobs(settings, jobs)
    proc = start_worker(settings, tmp_path, prefix, concurrency=16)
    try:
        wait_for(lambda: redis_client.scard(f"{prefix}:done") >= 300)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert Worker(settings, recording_app.app).run_until_idle(90)
    done = {m.decode() for m in redis_client.smembers(f"{prefix}:done")}
    assert done == {j.id for j in jobs}
    runs = [int(v) for v in redis_client.hgetall(f"{prefix}:runs").values()]
    duplicates = sum(runs) - len(runs)
    print(f"kill -9: {len(runs)} ids executed, {duplicates} executed twice")
    assert duplicates <= 16 + 3  # at most what was running (or unmarked) at the kill


def test_sigterm_finishes_in_flight_jobs_and_exits_0(make_settings, redis_client, kafka_cleanup,
                                                     tmp_path, prefix):
    settings = make_settings(queues={"default": {"partitions": 1}})
    setup_topics(settings)
    jobs = [make_job("default", "record", {"sleep_s": 1.0}) for _ in range(4)]
    produce_jobs(settings, jobs)
    proc = start_worker(settings, tmp_path, prefix, concurrency=4)
    try:
        wait_for(lambda: redis_client.scard(f"{prefix}:started") == 4)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert redis_client.scard(f"{prefix}:done") == 4
    assert committed(settings, 1) == [4]


def test_a_forked_worker_names_itself_not_its_parent(make_settings, redis_client, kafka_cleanup,
                                                     tmp_path, prefix):
    """A running job's state names the child process that runs it (host:pid)."""
    settings = make_settings(queues={"default": {"partitions": 2, "track_status": True}})
    setup_topics(settings)
    job = make_job("default", "record", {"hold": True})
    produce_jobs(settings, [job])
    proc = start_worker(settings, tmp_path, prefix, queue_config="track_status = true\n",
                        processes=2)
    try:
        wait_for(lambda: (status := jobstatus.lookup(redis_client, settings, job.id)) is not None
                 and status.state == "running")
        status = jobstatus.lookup(redis_client, settings, job.id)
        assert status is not None
        pid = int(str(status.details["worker"]).rpartition(":")[2])
        assert pid != proc.pid
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert int(stat.rpartition(")")[2].split()[1]) == proc.pid  # its parent is the supervisor
    finally:
        redis_client.set(f"{prefix}:release", 1)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

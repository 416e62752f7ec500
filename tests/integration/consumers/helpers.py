"""Helpers for worker tests: produce envelopes straight to a main topic, start
worker processes, wait for conditions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from confluent_kafka import Producer

from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from jobpipe.settings import Settings


def make_job(queue: str, task: str, args: Any = None, **fields: Any) -> Job:
    return Job(id=fields.pop("id", None) or new_job_id(), queue=queue, task=task, args=args,
               enqueued_at=now_ns(), **fields)


def produce_raw(settings: Settings, topic: str, values: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer(kafka_producer_config(settings.kafka, **{"linger.ms": 5}))
    for key, value in values:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def produce_jobs(settings: Settings, jobs: list[Job]) -> None:
    by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
    for job in jobs:
        topic = names.main_topic(settings.namespace, job.queue, job.priority)
        by_topic.setdefault(topic, []).append((job.key.encode() if job.key else None,
                                               encode(job)))
    for topic, values in by_topic.items():
        produce_raw(settings, topic, values)


def setup_topics(settings: Settings) -> None:
    apply_topics(settings)


ROOT = Path(__file__).resolve().parents[3]


def start_worker(settings: Settings, tmp_path: Path, prefix: str, concurrency: int = 8,
                 queue_config: str = "", processes: int = 1, env: dict[str, str] | None = None,
                 stderr: IO[Any] | None = None) -> subprocess.Popen[bytes]:
    """``jobpipe worker`` of ``recording_app`` on the test's services and queue
    ``default`` (records under ``prefix``); ``env`` adds variables, ``stderr``
    takes its log."""
    child_env = {**os.environ, "JOBPIPE_NAMESPACE": settings.namespace,
                 "JOBPIPE_REDIS_URL": settings.redis.url,
                 "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap, "REC_PREFIX": prefix,
                 **(env or {})}
    config = tmp_path / "jobpipe.toml"
    spec = settings.topology.get("default")
    config.write_text(f"[queues.default]\npartitions = {spec.partitions}\n"
                      "retry_tiers_s = [1, 2]\n" + queue_config)
    child_env["JOBPIPE_CONFIG"] = str(config)
    return subprocess.Popen([sys.executable, "-m", "jobpipe", "worker",
                             "tests.integration.consumers.recording_app",
                             "--concurrency", str(concurrency), "--processes", str(processes)],
                            cwd=ROOT, env=child_env, stderr=stderr)


def wait_for(condition: Callable[[], object], timeout_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail the test after a (generous) ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)

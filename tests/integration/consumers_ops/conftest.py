"""Helpers for the operator-tool tests: produce and read real Kafka records."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop
from confluent_kafka import Consumer, Producer

from consumers import App, JobContext, Worker
from jobpipe.envelope import Job, new_job_id, now_ns
from jobpipe.settings import Settings


def make_job(queue: str = "default", task: str = "t", **fields: Any) -> Job:
    """A job with fresh id and enqueue time."""
    fields.setdefault("args", {"n": 1})
    return Job(id=new_job_id(), queue=queue, task=task, enqueued_at=now_ns(), **fields)


def wait_for(condition: Callable[[], object], timeout_s: float = 30.0) -> bool:
    """Poll ``condition`` until it is truthy or the (generous) deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def worker_running(settings: Settings) -> Iterator[list[str]]:
    """A real Worker on a thread, serving task ``work``; yields the ids of the jobs
    it ran, in order."""
    seen: list[str] = []
    app = App("ops")

    @app.task
    async def work(ctx: JobContext, args: dict[str, Any]) -> None:
        seen.append(ctx.job_id)

    worker = Worker(settings, app, retry_relay=False)
    # Worker.run() installs signal handlers, which only the main thread may do.
    thread = threading.Thread(target=uvloop.run, args=(worker.async_run(),), daemon=True)
    thread.start()
    yield seen
    worker.stop()
    thread.join(30)
    assert not thread.is_alive()


def produce(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]],
            headers: list[tuple[str, bytes]] | None = None,
            partition: int | None = None, timestamp_ms: int = 0) -> None:
    """Produce (key, value) records and wait for every acknowledgement
    (``timestamp_ms``: their create time; 0 = now)."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap,
                         "broker.address.family": "v4", "enable.idempotence": True})
    errors: list[Any] = []
    for key, value in records:
        extra = {} if partition is None else {"partition": partition}
        producer.produce(topic, value=value, key=key, headers=headers,
                         on_delivery=lambda err, _m: errors.append(err) if err else None,
                         timestamp=timestamp_ms, **extra)
    assert producer.flush(30) == 0
    assert not errors


Reader = Callable[..., list[Any]]


@pytest.fixture
def read_topics() -> Iterator[Reader]:
    """``read(settings, topics, count, timeout_s)``: the next ``count`` messages of
    ``topics`` (from the beginning), with their arrival time (``time.monotonic``)."""
    consumers: list[Consumer] = []

    def read(settings: Settings, topics: list[str], count: int,
             timeout_s: float = 20.0) -> list[tuple[float, Any]]:
        consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                             "broker.address.family": "v4",
                             "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                             "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumers.append(consumer)
        consumer.subscribe(topics)
        got: list[tuple[float, Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                got.append((time.monotonic(), msg))
        return got

    yield read
    for consumer in consumers:
        consumer.close()


"""Bad messages on a main topic: each dead-lettered once with a reason; valid jobs flow."""

from __future__ import annotations

import threading

import orjson
import pytest
from confluent_kafka import Producer

from consumers import App, JobContext, Worker
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_producer_config
from jobpipe.envelope import Job, encode, new_job_id, now_ns
from loadtest.dead_letters import read_dead_letters

pytestmark = pytest.mark.integration


def _valid(task: str = "ok", **fields) -> dict:
    job = Job(id=new_job_id(), queue="default", task=task, args={"n": 1},
              enqueued_at=now_ns())
    return {**job.to_dict(), **fields}


def _bad_messages() -> list[tuple[bytes, str]]:
    nested = _valid()
    nested["args"] = "NESTED"
    deep = orjson.dumps(nested).replace(b'"NESTED"', b"[" * 300 + b"]" * 300)
    return [
        (b"", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b'{"key":null,"id":"x","queue":"default"', "invalid_json"),  # truncated
        (b'{"id":"caf\xc3"}', "invalid_json"),  # invalid UTF-8
        (deep, "invalid_json"),
        (b"[1,2,3]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (orjson.dumps({k: v for k, v in _valid().items() if k != "task"}), "missing_field"),
        (orjson.dumps(_valid(attempt="1")), "wrong_type"),
        (orjson.dumps(_valid(max_attempts=True)), "wrong_type"),
        (orjson.dumps(_valid(errors={"not": "a list"})), "wrong_type"),
        (orjson.dumps(_valid(task="no_such_task")), "unknown_task"),
        (orjson.dumps(_valid(queue="other")), "unknown_queue"),
    ]


def test_each_bad_message_is_dead_lettered_once_with_its_reason(settings, kafka_cleanup):
    apply_topics(settings)
    ran: list[str] = []
    lock = threading.Lock()
    app = App("bad-input")

    @app.task("ok")
    def ok(ctx: JobContext, args) -> None:
        with lock:
            ran.append(ctx.job_id)

    bad = _bad_messages()
    valid = [Job(id=new_job_id(), queue="default", task="ok", args={"i": i},
                 enqueued_at=now_ns()) for i in range(300)]
    producer = Producer(kafka_producer_config(settings.kafka))
    topic = names.main_topic(settings.namespace, "default")
    for i, job in enumerate(valid):  # bad messages interleaved with valid ones
        producer.produce(topic, encode(job))
        if i % 20 == 0 and i // 20 < len(bad):
            producer.produce(topic, bad[i // 20][0])
    assert producer.flush(30) == 0

    assert Worker(settings, app).run_until_idle(timeout_s=90)

    dead = read_dead_letters(settings)
    print(f"[bad input] bad={len(bad)} dead_lettered={len(dead)} valid={len(valid)} "
          f"executed={len(ran)} executed_unique={len(set(ran))}")
    sources = [(d.source_topic, d.source_partition, d.source_offset) for d in dead]
    assert len(set(sources)) == len(dead), "a bad message was dead-lettered twice"
    got = sorted((d.value, d.reason) for d in dead)
    assert got == sorted(bad)
    assert all(d.error for d in dead), "each DLQ record says what was wrong"
    assert all(d.source_topic == topic for d in dead)
    assert sorted(ran) == sorted(j.id for j in valid)

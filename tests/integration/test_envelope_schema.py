"""Real envelopes on the real wire follow docs/envelope.schema.json, and a job
written into a main topic by a non-Python Kafka client (kcat, on librdkafka's C
API) runs; a malformed one goes to the DLQ with its reason.

Envelopes come from the real producer (read back from the Redis lists), the
real bridge (read back from the main topics), and the real worker (retry tier
and DLQ records); each is checked against the schema as published.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError
from opentelemetry.sdk.trace import TracerProvider

from bridge import Bridge
from consumers import App, JobContext, Worker
from ingest import Producer
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.connections import kafka_consumer_config
from jobpipe.settings import Settings
from tests.envelope_schema import problems, record_view
from tests.services import skip_unless_ci

pytestmark = pytest.mark.integration
SHORT_METADATA = {"producer": {"topic.metadata.propagation.max.ms": "1500"}}


def read_records(settings: Settings, topics: list[str], expect: int,
                 timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The first ``expect`` records of ``topics`` (from the start), each as
    ``{"topic", "partition", "raw", "view"}`` where ``view`` is the schema's form."""
    consumer = Consumer(kafka_consumer_config(
        settings.kafka, f"schema-read-{uuid.uuid4().hex[:8]}",
        **{"enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    consumer.subscribe(topics)
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expect:
            assert time.monotonic() < deadline, f"{len(out)} of {expect} records in {topics}"
            for msg in consumer.consume(500, 0.5):
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    continue
                out.append({"topic": msg.topic(), "partition": msg.partition(),
                            "raw": msg.value(),
                            "view": record_view(msg.key(), msg.headers(), msg.value())})
    finally:
        consumer.close()
    return out


def _redis_entries(client: Any, settings: Settings) -> dict[str, list[bytes]]:
    """Every entry of every ready, tenant and delayed key of the test's queues."""
    out: dict[str, list[bytes]] = {}
    # The wake-up set holds a token, not a job.
    wake = {names.wake_key(settings.namespace, q).encode() for q in settings.topology.queues}
    for key in client.scan_iter(match=f"{settings.namespace}:*", count=1000):
        if key in wake:
            continue
        kind = client.type(key)
        if kind == b"list":
            out[key.decode()] = client.lrange(key, 0, -1)
        elif kind == b"zset":
            out[key.decode()] = client.zrange(key, 0, -1)
    return out


def test_envelopes_in_redis_and_kafka_follow_the_schema(make_settings, redis_client,
                                                        kafka_cleanup):
    settings = make_settings(queues={
        "plain": {"partitions": 3, "shards": 2, "priorities": [3, 1]},
        "fair": {"partitions": 2, "fair": True},
        "ghost": {"partitions": 1, "shards": 1},  # no topics: Kafka refuses its jobs
    }, kafka=SHORT_METADATA)
    ns = settings.namespace
    apply_topics(settings, [settings.topology.get("plain"), settings.topology.get("fair")])
    with Producer(settings) as producer:
        ids = [producer.enqueue("plain", "send", {"to": "a@example.com"}),
               producer.enqueue("plain", "charge", [42, "ü", None], key="order-42", priority=1,
                                max_attempts=2, idempotency_key="pay-42", unique_for_s=60),
               *producer.enqueue_many("plain", "bulk", [{"i": i} for i in range(5)],
                                      key="batch-1"),
               producer.enqueue("plain", "later", None, delay_s=0.5),
               producer.enqueue("fair", "report", {"month": 11}, tenant="acme"),
               producer.enqueue("fair", "report", {"month": 12})]
        with TracerProvider().get_tracer("test").start_as_current_span("request"):
            ids.append(producer.enqueue("plain", "traced", {}))
        ghost = producer.enqueue("ghost", "lost", {})

    entries = _redis_entries(redis_client, settings)
    jobs = {orjson.loads(raw)["id"]: raw for values in entries.values() for raw in values}
    assert set(jobs) == {*ids, ghost}, "every job is in exactly one Redis list or set"
    delayed = entries[names.delayed_key(ns, "plain")]
    for key, values in entries.items():
        kind = "redis_delayed_member" if key == names.delayed_key(ns, "plain") else "envelope"
        for raw in values:
            assert problems(orjson.loads(raw), kind) == [], (key, raw)
    assert any("traceparent" in orjson.loads(raw).get("meta", {}) for raw in jobs.values())

    due_ns = max(orjson.loads(raw)["run_at"] for raw in delayed)
    while time.time_ns() < due_ns:  # the delayed job is promoted only once due
        time.sleep(0.05)
    assert Bridge(settings).run_until_idle(60)

    topics = [t for spec in (settings.topology.get("plain"), settings.topology.get("fair"))
              for t in spec.topics(ns)]
    records = read_records(settings, topics, expect=len(ids))
    assert sorted(r["view"]["value"]["id"] for r in records) == sorted(ids)
    for record in records:
        view = record["view"]
        assert problems(view, "kafka_main_record") == [], view
        assert view["key"] == view["value"]["key"], "the record key is the envelope's key"
        assert record["raw"] == jobs[view["value"]["id"]], "the bridge moves bytes untouched"
        level = view["value"].get("priority", 0)
        assert record["topic"] == names.main_topic(ns, view["value"]["queue"], level)

    [dead] = redis_client.lrange(names.dead_key(ns, "ghost"), 0, -1)
    record = orjson.loads(dead)
    assert problems(record, "redis_dead_record") == [], record
    assert record["reason"] == "unknown_topic"
    assert record["job"].encode() == jobs[ghost]


# --- a producer in another language --------------------------------------------------------

@pytest.fixture
def kcat() -> str:
    """The kcat binary (a missing one skips locally and fails in CI)."""
    path = shutil.which("kcat")
    if path is None:
        skip_unless_ci("kcat is not installed (scripts/bootstrap installs it)")
    assert path is not None
    return path


def kcat_produce(kcat: str, settings: Settings, topic: str, lines: list[bytes],
                 *args: str) -> None:
    """Produce one message per line with kcat (``-K TAB``: a key before a tab)."""
    command = [kcat, "-P", "-b", settings.kafka.bootstrap, "-X", "broker.address.family=v4",
               "-t", topic, *args]
    done = subprocess.run(command, input=b"\n".join(lines) + b"\n", capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()


def _foreign_job(task: str, key: str | None = None, **args: Any) -> bytes:
    """A job as another language writes it: by hand, ``key`` last, a UUIDv4 id."""
    head = (f'{{"id":"{uuid.uuid4()}","queue":"default","task":"{task}",'
            f'"args":{orjson.dumps(args).decode()},"attempt":1,"max_attempts":3,'
            f'"enqueued_at":{time.time_ns()}')
    tail = f',"key":"{key}"}}' if key is not None else "}"
    return (head + tail).encode()


def test_a_job_written_by_kcat_runs_and_a_malformed_one_is_dead_lettered(kcat, settings,
                                                                         kafka_cleanup):
    ns = settings.namespace
    topic = names.main_topic(ns, "default")
    apply_topics(settings)
    keys = [f"order-{i}" for i in range(8)]
    with Producer(settings) as producer:
        bridged = [producer.enqueue("default", "record", {"via": "bridge"}, key=k) for k in keys]
    assert Bridge(settings).run_until_idle(60)

    keyed = {key: _foreign_job("record", key=key) for key in keys}
    keyless = [_foreign_job("record"), _foreign_job("flaky")]
    malformed = {b"not json at all": ("invalid_json", "line 1 column 1"),
                 _foreign_job("record").replace(b'"attempt":1', b'"attempt":"1"'):
                     ("wrong_type", "field 'attempt' has the wrong type"),
                 _foreign_job("record").replace(b'"task":"record",', b""):
                     ("missing_field", "field 'task' is missing")}
    for raw in [*keyed.values(), *keyless]:
        assert problems(orjson.loads(raw)) == [], raw
    for raw in malformed:
        assert raw == b"not json at all" or problems(orjson.loads(raw)) != []
    kcat_produce(kcat, settings, topic, [k.encode() + b"\t" + v for k, v in keyed.items()],
                 "-K", "\t", "-H", "producer=kcat")
    kcat_produce(kcat, settings, topic, [*keyless, *malformed])

    ran: list[tuple[str, int]] = []
    lock = threading.Lock()
    app = App("foreign")

    @app.task
    def record(ctx: JobContext, args: dict[str, Any]) -> None:
        with lock:
            ran.append((ctx.job_id, ctx.attempt))

    @app.task
    def flaky(ctx: JobContext, args: dict[str, Any]) -> None:
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails, so the job takes a retry tier")
        record(ctx, args)

    assert Worker(settings, app).run_until_idle(timeout_s=120)

    foreign_ids = {orjson.loads(raw)["id"]: raw for raw in [*keyed.values(), *keyless]}
    flaky_id = orjson.loads(keyless[1])["id"]
    assert sorted(ran) == sorted([*((i, 1) for i in bridged),
                                  *((i, 1) for i in foreign_ids if i != flaky_id),
                                  (flaky_id, 2)])

    main = read_records(settings, [topic], expect=len(bridged) + len(foreign_ids) + 4)
    partition_of: dict[tuple[str, str | None], int] = {}
    for rec in main:
        view = rec["view"]
        if rec["raw"] not in malformed:
            assert problems(view, "kafka_main_record") == [], view
            partition_of[view["headers"].get("producer", "jobpipe"), view["key"]] = rec["partition"]
    relayed = [r["view"] for r in main if "jp-retry-jitter-ms" in r["view"]["headers"]]
    assert [v["value"]["id"] for v in relayed] == [flaky_id], "a retry comes back with its header"
    for key in keys:  # librdkafka's default partitioner in both: a key has one partition
        assert partition_of["kcat", key] == partition_of["jobpipe", key], key

    [retry] = read_records(settings, [names.retry_topic(ns, "default", 1)], expect=1)
    assert problems(retry["view"], "kafka_retry_record") == [], retry["view"]
    assert retry["view"]["value"]["id"] == flaky_id

    dlq = read_records(settings, [names.dlq_topic(ns, "default")], expect=len(malformed))
    assert len(dlq) == len(malformed)
    for rec in dlq:
        view = rec["view"]
        assert problems(view, "kafka_dlq_record") == [], view
        reason, says = malformed[rec["raw"]]
        assert view["headers"]["jp-reason"] == reason
        assert says in view["headers"]["jp-error"], view["headers"]["jp-error"]
        assert view["headers"]["jp-source-topic"] == topic

"""Test helpers: put jobs into Redis exactly as a producer would, count them in Kafka."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterable

import orjson
import redis
from confluent_kafka import Consumer, KafkaError

from jobpipe import names
from jobpipe.envelope import Job, encode, new_job_id, now_ns, peek_key
from jobpipe.settings import Settings
from jobpipe.topology import shard_for

_spread = itertools.count()


def make_job(queue: str, *, key: str | None = None, tenant: str | None = None,
             priority: int = 0, size_bytes: int = 0, run_at_ns: int | None = None) -> Job:
    """A job with a fresh id (``size_bytes`` pads its args)."""
    return Job(id=new_job_id(), queue=queue, task="t", args={"pad": "x" * size_bytes},
               key=key, tenant=tenant, priority=priority, enqueued_at=now_ns(), run_at=run_at_ns)


def push(client: redis.Redis, settings: Settings, jobs: Iterable[Job],
         chunk: int = 5000) -> list[str]:
    """LPUSH jobs onto their ready (or tenant) lists, as the producer contract says."""
    ns = settings.namespace
    ids: list[str] = []
    pipe = client.pipeline(transaction=False)
    pending = 0
    for job in jobs:
        spec = settings.topology.get(job.queue)
        raw = encode(job)
        if spec.fair:
            tenant = job.tenant or "default"
            pipe.lpush(names.tenant_ready_key(ns, job.queue, tenant), raw)
            pipe.sadd(names.tenants_key(ns, job.queue), tenant)
        else:
            shard = shard_for(peek_key(raw), spec.shards, next(_spread))
            pipe.lpush(names.ready_key(ns, job.queue, shard, job.priority), raw)
        ids.append(job.id)
        pending += 1
        if pending >= chunk:
            pipe.execute()
            pending = 0
    pipe.execute()
    return ids


def fill(client: redis.Redis, settings: Settings, queue: str, n: int, **kw) -> list[str]:
    """Push ``n`` fresh jobs of ``queue``."""
    return push(client, settings, (make_job(queue, **kw) for _ in range(n)))


def consume(settings: Settings, topics: list[str], expect: int, timeout_s: float = 60.0,
            settle_s: float = 1.0, group: str | None = None, commit: bool = False) -> list[dict]:
    """Read every message of ``topics`` (from the start) until ``expect`` were seen
    and nothing more arrived for ``settle_s``, or ``timeout_s`` passed.

    Returns the decoded envelopes with ``_partition``, ``_offset`` and ``_ts_ms`` added.
    """
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap,
                         "broker.address.family": "v4",
                         "group.id": group or f"count-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": commit,
                         "auto.commit.interval.ms": 100})
    consumer.subscribe(topics)
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(5000, 0.2)
            got = 0
            for msg in batch:
                if msg.error():
                    if msg.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        continue
                    raise AssertionError(msg.error())
                job = orjson.loads(msg.value())
                job["_partition"], job["_offset"] = msg.partition(), msg.offset()
                job["_ts_ms"] = msg.timestamp()[1]
                job["_key"] = msg.key()
                out.append(job)
                got += 1
            if got:
                quiet_since = time.monotonic()
            elif len(out) >= expect and time.monotonic() - quiet_since >= settle_s:
                break
    finally:
        consumer.close()
    return out


def id_counts(messages: list[dict]) -> Counter[str]:
    """How many times each job id was seen."""
    return Counter(m["id"] for m in messages)

"""The bridge's dead list: jobs Kafka refused for good, with the reason.

A permanent produce error (message too large, unknown topic ...) must never
drop a job silently. The bridge pushes a JSON record to ``names.dead_key`` in
the same script that acknowledges the job's batch (:mod:`bridge.take`), so a
job is always in exactly one of: ready, in flight, dead, Kafka.

Record: ``{"reason", "error", "job", "source", "at"}``: ``job`` is the envelope
as a string (``job_b64`` instead when the bytes are not UTF-8), ``source`` the
ready list it came from (where ``requeue`` returns it), ``at`` ms since epoch.

A queue with ``shard_slots`` has a dead list per shard, under the shard's hash
tag with the lists its jobs came from: the ack and the requeue stay in one slot.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from bridge.batch import DeadJob
from bridge.reaper import tenant_of
from jobpipe import names
from jobpipe.settings import Settings

# KEYS: dead, destination, then tenants if a tenant ; ARGV: record, job, tenant ('' = none)
_REQUEUE = """#!lua flags=allow-oom
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then redis.call('SADD', KEYS[3], ARGV[3]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class DeadRecord:
    """One entry of a queue's dead list.

    Attributes:
        reason: short code, e.g. ``message_too_large``, ``unknown_topic``.
        error: the broker's or client's message.
        job: the envelope bytes.
        source: the ready list the job was taken from.
        at_ms: when it was declared dead (ms since the epoch).
        raw: the record as stored (used to remove exactly it).
    """

    reason: str
    error: str
    job: bytes
    source: str
    at_ms: int
    raw: bytes


def encode_record(job: DeadJob, source: str, at_ms: int | None = None) -> bytes:
    """The stored form of a dead job."""
    body: dict[str, Any] = {"reason": job.reason, "error": job.error, "source": source,
                            "at": at_ms if at_ms is not None else int(time.time() * 1000)}
    try:
        body["job"] = job.raw.decode()
    except UnicodeDecodeError:
        body["job_b64"] = base64.b64encode(job.raw).decode()
    return orjson.dumps(body)


def decode_record(raw: bytes) -> DeadRecord:
    """Parse a stored record (tolerates records written by hand)."""
    body = orjson.loads(raw)
    job = (base64.b64decode(body["job_b64"]) if "job_b64" in body
           else str(body.get("job", "")).encode())
    return DeadRecord(reason=str(body.get("reason", "")), error=str(body.get("error", "")),
                      job=job, source=str(body.get("source", "")), at_ms=int(body.get("at", 0)),
                      raw=raw)


def list_dead(client: redis.Redis[bytes], settings: Settings, queue: str,
              limit: int = 100) -> list[DeadRecord]:
    """The newest ``limit`` dead records of ``queue`` (newest first)."""
    keys = _dead_keys(settings, queue)
    records = [decode_record(r) for key in keys for r in client.lrange(key, 0, limit - 1)]
    if len(keys) == 1:
        return records
    # One list per shard: merged by the time each was declared dead.
    return sorted(records, key=lambda r: r.at_ms, reverse=True)[:limit]


def count_dead(client: redis.Redis[bytes], settings: Settings, queue: str) -> int:
    """How many dead records ``queue`` holds."""
    return sum(int(client.llen(key)) for key in _dead_keys(settings, queue))


def _dead_keys(settings: Settings, queue: str) -> list[str]:
    """The dead list of ``queue``, or one per shard with ``shard_slots``.

    Raises:
        ConfigError: ``queue`` is not declared.
    """
    spec = settings.topology.get(queue)
    return [names.dead_key(settings.namespace, queue, slot) for slot in spec.slots]


def requeue_dead(client: redis.Redis[bytes], settings: Settings, queue: str) -> int:
    """Return every dead job of ``queue`` to the ready list it came from.

    Each record moves in one script (removed from the dead list and pushed in
    the same step), so running this twice, or beside a bridge, never
    duplicates or drops a job. Returns the number moved.
    """
    spec = settings.topology.get(queue)
    ns = settings.namespace
    script = client.register_script(_REQUEUE)
    moved = 0
    for slot in spec.slots:
        dead = names.dead_key(ns, queue, slot)
        for raw in reversed(client.lrange(dead, 0, -1)):  # oldest first
            record = decode_record(raw)
            # A record without its source: shard 0 of level 0 (of this slot's shard).
            dest = record.source or names.ready_key(ns, queue, slot or 0, 0,
                                                    own_slot=spec.shard_slots)
            tenant = tenant_of(ns, queue, dest)
            keys = [dead, dest, *([names.tenants_key(ns, queue)] if tenant else [])]
            moved += int(script(keys=keys, args=[raw, record.job, tenant]))
    return moved

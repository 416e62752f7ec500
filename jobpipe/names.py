"""Every Redis key and Kafka topic name jobpipe uses, and nothing else.

Redis keys of one queue share the hash tag ``{queue}`` so a Lua script can
touch all of them on one Redis Cluster slot (a queue lives on one primary;
queues spread over primaries). A queue with ``shard_slots``
(:class:`jobpipe.topology.QueueSpec`) gives each shard a tag of its own,
``{queue.s<shard>}``, on the keys a push, a take, an ack, a recovery and a
promotion touch together (marked *shard* below), so one hot queue spreads over
up to ``shards`` slots and so over primaries, while each script still touches
one slot; its other keys keep ``{queue}``. Queue names never contain ``.``, so
a shard's tag never equals a queue's. Keys per namespace (``ns:bridges``,
``ns:paused``...) are never in a script with a queue's keys: docs/scaling.md
lists each, and each place a queue's state spans slots. Kafka names use ``.``
as the separator, which queue names may therefore not contain.

Redis, per queue ``q`` in namespace ``ns`` (``{q}`` is ``{q.s<shard>}`` for the
*shard* keys of a queue with ``shard_slots``)::

    ns:{q}:ready:<level>:<shard>   LIST  ready jobs (LPUSH in, RPOP side out)       shard
    ns:{q}:t:<tenant>              LIST  ready jobs of one tenant (fair queues)
    ns:{q}:tenants                 SET   tenants with waiting jobs (fair queues)
    ns:{q}:delayed                 ZSET  delayed jobs scored by run_at (ms)          shard
    ns:{q}:wake                    ZSET  one member while work arrived unseen        shard
    ns:{q}:inflight:<bridge>       LIST  jobs a bridge took and Kafka has not acked
    ns:{q}:inflight:<bridge>:<src> LIST  the same, per ready list taken from         shard
    ns:{q}:inflight-index          SET   in-flight list keys that may hold jobs      shard
    ns:{q}:inflight-owners         SET   bridge ids still allowed to write them      shard
    ns:{q}:dead                    LIST  jobs Kafka refused for good (with reason)   shard
    ns:{q}:unique:<key>            STR   unique-job window -> first job id           shard
    ns:{q}:done:<key>              STR   done marker of a completed job with an
                                         explicit idempotency key (``idem``)
    ns:{q}:done-ids:<id[:11]>      HASH  done markers of completed jobs keyed by
                                         their id, id -> 1, one hash per 256 ms of ids
    ns:{q}:jobs:<id[:11]>          HASH  tracked jobs' state records, id -> record,
                                         one hash per 256 ms of ids (jobpipe.jobstatus)
    ns:{q}:paused-tenants          SET   paused tenants
    ns:{q}:parked:<tenant>         LIST  jobs of a paused tenant
    ns:{q}:rate[:<tenant>]         HASH  token bucket
    ns:paused                      SET   paused queues
    ns:paused-tenant-queues        SET   queues that have (had) a paused tenant
    ns:bridges                     ZSET  bridge id -> heartbeat deadline (ms)
    ns:workers                     ZSET  worker id -> last heartbeat (ms), consumers.heartbeat
    ns:schedules:last              ZSET  schedule -> Redis time (ms) decided up to
    ns:control                     pub/sub channel for pause/resume

Kafka::

    ns.q            main topic (priority level 0)
    ns.q.p<level>   main topic of priority level >= 1
    ns.q.retry.5s   retry tier with its delay in the name
    ns.q.dlq        dead-letter topic
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
_TENANT = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")


def is_valid_queue_name(name: str) -> bool:
    """Queue names are 1-100 of ``[A-Za-z0-9_-]``: safe in keys and topic names."""
    return bool(_NAME.fullmatch(name))


def is_valid_namespace(name: str) -> bool:
    """Namespaces follow the queue-name rules."""
    return bool(_NAME.fullmatch(name))


def is_valid_tenant(name: str) -> bool:
    """Tenant names are 1-200 of ``[A-Za-z0-9_.:@-]``."""
    return bool(_TENANT.fullmatch(name))


def _q(ns: str, queue: str, slot: int | None = None) -> str:
    """The prefix of a queue's keys: ``ns:{q}``, or ``ns:{q.s<slot>}`` for the keys of
    shard ``slot`` of a queue with ``shard_slots`` (a hash tag of its own)."""
    return f"{ns}:{{{queue}}}" if slot is None else f"{ns}:{{{queue}.s{slot}}}"


def _base(key: str) -> str:
    """The prefix of a queue key up to its hash tag (``ns:{q}`` or ``ns:{q.s3}``);
    namespaces and queue names never contain ``}``."""
    return key[: key.index("}") + 1]


def namespace_pattern(ns: str) -> str:
    """SCAN pattern matching every Redis key of a namespace."""
    return f"{ns}:*"


def namespace_topic_prefix(ns: str) -> str:
    """What every Kafka topic name of a namespace starts with."""
    return f"{ns}."


# --- Redis: ready work ----------------------------------------------------------


def ready_key(ns: str, queue: str, shard: int, level: int = 0, *,
              own_slot: bool = False) -> str:
    """One shard of a queue's ready list at a priority level; ``own_slot`` (a queue
    with ``shard_slots``): under the shard's own hash tag."""
    return f"{_q(ns, queue, shard if own_slot else None)}:ready:{level}:{shard}"


def tenant_ready_key(ns: str, queue: str, tenant: str) -> str:
    """A fair queue's ready list of one tenant."""
    return f"{_q(ns, queue)}:t:{tenant}"


def tenants_key(ns: str, queue: str) -> str:
    """A fair queue's registry of tenants that have jobs waiting."""
    return f"{_q(ns, queue)}:tenants"


def delayed_key(ns: str, queue: str, slot: int | None = None) -> str:
    """A queue's delayed jobs, scored by ``run_at`` in milliseconds."""
    return f"{_q(ns, queue, slot)}:delayed"


def wake_key(ns: str, queue: str, slot: int | None = None) -> str:
    """The wake-up of a queue's idle bridges: every push adds its one member
    (:data:`WAKE_MEMBER`, score 0; a no-op while it is there), and an idle
    bridge blocks in ``BZPOPMIN`` on it."""
    return f"{_q(ns, queue, slot)}:wake"


WAKE_MEMBER = "w"  # also written literally by the push script (ingest/scripts.py)


# --- Redis: bridge --------------------------------------------------------------


def inflight_key(ns: str, queue: str, bridge_id: str, slot: int | None = None) -> str:
    """Jobs one bridge took from a queue and Kafka has not yet acknowledged."""
    return f"{_q(ns, queue, slot)}:inflight:{bridge_id}"


def inflight_pattern(ns: str, queue: str, slot: int | None = None) -> str:
    """SCAN pattern matching every bridge's in-flight list of a queue (of one slot)."""
    return f"{_q(ns, queue, slot)}:inflight:*"


def bridge_id_from_inflight(key: str) -> str:
    """The bridge id an in-flight key belongs to (bridge ids never contain ``:``)."""
    return key[len(_base(key)) + len(":inflight:") :].partition(":")[0]


def inflight_list_key(bridge_id: str, source_key: str) -> str:
    """One bridge's in-flight list of the jobs it took from one ready list, under
    the hash tag of that list (so one script moves jobs between them).

    ``source_key`` is that ready (or tenant) list's own key; recovery returns
    the jobs to exactly it (see :func:`inflight_source`).
    """
    base = _base(source_key)
    return f"{base}:inflight:{bridge_id}:{source_key[len(base) + 1 :]}"


def inflight_source(key: str) -> str:
    """The ready list an :func:`inflight_list_key` took its jobs from."""
    base = _base(key)
    rest = key[len(base) + len(":inflight:") :]
    return f"{base}:{rest.partition(':')[2]}"


def inflight_index_key(ns: str, queue: str, slot: int | None = None) -> str:
    """The in-flight list keys of a queue that may hold jobs (so none needs a SCAN)."""
    return f"{_q(ns, queue, slot)}:inflight-index"


def inflight_owners_key(ns: str, queue: str, slot: int | None = None) -> str:
    """Bridge ids still allowed to write their in-flight lists of a queue (fencing)."""
    return f"{_q(ns, queue, slot)}:inflight-owners"


def dead_key(ns: str, queue: str, slot: int | None = None) -> str:
    """Jobs Kafka refused for good, each stored with its reason."""
    return f"{_q(ns, queue, slot)}:dead"


def bridges_key(ns: str) -> str:
    """Live bridges: id scored by heartbeat deadline in milliseconds."""
    return f"{ns}:bridges"


def workers_key(ns: str) -> str:
    """Workers' heartbeats: worker id scored by its last heartbeat in milliseconds."""
    return f"{ns}:workers"


def schedules_last_key(ns: str) -> str:
    """Per schedule, the Redis time (ms) up to which its fire times are decided
    (enqueued, or skipped as missed)."""
    return f"{ns}:schedules:last"


# --- Redis: job state -----------------------------------------------------------


def unique_key(ns: str, queue: str, idempotency_key: str, slot: int | None = None) -> str:
    """Unique-job window of one idempotency key; the value is the first job id."""
    return f"{_q(ns, queue, slot)}:unique:{idempotency_key}"


def done_key(ns: str, queue: str, idempotency_key: str) -> str:
    """Marker set once a job with an explicit idempotency key completed, so a
    redelivery is skipped (a job keyed by its id has its marker in
    :func:`done_ids_key`)."""
    return f"{_q(ns, queue)}:done:{idempotency_key}"


# How many leading characters of a job id name its state hash (and its done
# markers' hash): a UUIDv7's first 40 bits of Unix milliseconds, so the jobs made
# in one 256 ms share a hash. A batch's records are then read and written with
# one HMGET and one HSET, and a hash expires whole (one TTL per hash, not per
# job); at 50,000 jobs/s a hash holds ~13,000 records, small enough to free in a
# few ms when it expires. Ids of other writers (any UUID) spread over hashes of a
# record or a few each.
STATE_HASH_ID_CHARS = 11


def done_ids_key(ns: str, queue: str, job_id: str) -> str:
    """The hash holding the done marker of job ``job_id`` (field: the id), with
    the markers of the jobs made near it in time (see :data:`STATE_HASH_ID_CHARS`)."""
    return f"{_q(ns, queue)}:done-ids:{job_id[:STATE_HASH_ID_CHARS]}"


def by_id_hash(job_ids: Iterable[str], key_of: Callable[[str], str]) -> dict[str, list[str]]:
    """``job_ids`` by the hash ``key_of(id)`` names (:func:`job_states_key` or
    :func:`done_ids_key`), in order within each. A batch's ids mostly share one
    hash, so each key is made once, from the ids' first
    :data:`STATE_HASH_ID_CHARS` characters (all that either key reads of an id)."""
    by_prefix: dict[str, list[str]] = {}
    for job_id in job_ids:
        prefix = job_id[:STATE_HASH_ID_CHARS]
        ids = by_prefix.get(prefix)
        if ids is None:
            by_prefix[prefix] = [job_id]
        else:
            ids.append(job_id)
    return {key_of(prefix): ids for prefix, ids in by_prefix.items()}


def job_states_key(ns: str, queue: str, job_id: str) -> str:
    """The hash holding the state record of job ``job_id`` (field: the id) of a
    queue that tracks status, with the records of the jobs made near it in time."""
    return f"{_q(ns, queue)}:jobs:{job_id[:STATE_HASH_ID_CHARS]}"


def cancel_requests_key(ns: str, queue: str) -> str:
    """Set of the ids of a tracking queue's jobs someone asked to cancel: a worker
    checks a batch against it with one ``SMISMEMBER`` (``jobpipe.jobstatus``)."""
    return f"{_q(ns, queue)}:cancels"


# --- Redis: operator controls ---------------------------------------------------


def paused_queues_key(ns: str) -> str:
    """The set of paused queues."""
    return f"{ns}:paused"


def paused_tenants_key(ns: str, queue: str) -> str:
    """The set of paused tenants of a queue."""
    return f"{_q(ns, queue)}:paused-tenants"


def paused_tenant_queues_key(ns: str) -> str:
    """The set of queues that have (or had) a paused tenant, so a worker finds every
    queue's paused tenants without knowing the queues beforehand."""
    return f"{ns}:paused-tenant-queues"


def parked_key(ns: str, queue: str, tenant: str) -> str:
    """Jobs of a paused tenant, held until it is resumed."""
    return f"{_q(ns, queue)}:parked:{tenant}"


def rate_key(ns: str, queue: str, tenant: str | None = None) -> str:
    """Token bucket of a queue, or of one tenant within it."""
    base = f"{_q(ns, queue)}:rate"
    return base if tenant is None else f"{base}:{tenant}"


def control_channel(ns: str) -> str:
    """Pub/sub channel on which pause and resume are announced."""
    return f"{ns}:control"


# --- Kafka ----------------------------------------------------------------------


def main_topic(ns: str, queue: str, level: int = 0) -> str:
    """The main topic of a queue at a priority level (0 = highest)."""
    return f"{ns}.{queue}" if level == 0 else f"{ns}.{queue}.p{level}"


def format_delay(delay_s: float) -> str:
    """A retry delay as it appears in a topic name: ``500ms``, ``5s``, ``5m``, ``2h``."""
    ms = round(delay_s * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def retry_topic(ns: str, queue: str, delay_s: float) -> str:
    """The retry tier topic of a queue with the given delay."""
    return f"{ns}.{queue}.retry.{format_delay(delay_s)}"


def dlq_topic(ns: str, queue: str) -> str:
    """The dead-letter topic of a queue."""
    return f"{ns}.{queue}.dlq"


def group_id(ns: str, role: str) -> str:
    """A Kafka consumer group id for a role such as ``workers`` or ``retry``."""
    return f"{ns}.{role}"

"""The least Redis privilege a worker needs: its queues' idempotency markers,
rate-limit buckets, pause state and job state records, the workers' heartbeat
set, and the commands its code sends.

Generated from the code and the topology, like the producer's and the
bridge's rules (:mod:`ingest.acl`, :mod:`bridge.acl`). A worker parks a
paused tenant's jobs and hands them back to the ready lists (the park script),
so it may write those too; it reads every queue's paused-tenant set (pause
flags are announced for any queue) but may not change them. It has no access
to the in-flight lists, the bridges' registry or another queue's jobs, and no
``FLUSHALL`` or ``KEYS``.
"""

from __future__ import annotations

from collections.abc import Iterable

from consumers import control, idempotency, ratelimit
from jobpipe import jobstatus, names
from jobpipe.lua import lua_commands
from jobpipe.topology import QueueSpec

_SCRIPTS = (control.PARK_LUA, idempotency._MARK, ratelimit.TAKE_LUA, jobstatus.ADVANCE_LUA)
# Sent by the worker itself: scripts by SHA (by body when pipelined on a cluster,
# jobpipe.pipelined), the pause flags' reads and their announcements (pub/sub),
# marker, record and cancel-request reads, the start-up safety check, the heartbeat
# (consumers.heartbeat).
_DIRECT_COMMANDS = ("evalsha", "eval", "script|load", "ping", "config|get",
                    "smembers", "smismember", "mget", "hget", "hmget", "subscribe",
                    "unsubscribe", "zadd", "zremrangebyscore", "zrem")


def worker_key_patterns(namespace: str, spec: QueueSpec) -> list[str]:
    """Every key (or key glob) a worker of ``spec`` reads or writes."""
    ns, q = namespace, spec.name
    keys = [names.ready_key(ns, q, shard, level, own_slot=spec.shard_slots)
            for level in spec.levels for shard in range(spec.shards)]
    keys += [names.done_key(ns, q, "*"), names.done_ids_key(ns, q, "*"), names.rate_key(ns, q),
             names.rate_key(ns, q, "*"), names.tenants_key(ns, q), names.parked_key(ns, q, "*")]
    if spec.fair:
        keys.append(names.tenant_ready_key(ns, q, "*"))
    if spec.track_status:
        keys += [names.job_states_key(ns, q, "*"), names.cancel_requests_key(ns, q)]
    return keys


def worker_acl_rules(namespace: str, specs: Iterable[QueueSpec]) -> list[str]:
    """``ACL SETUSER`` rules (after ``reset``, before ``on >password``) of a worker user."""
    commands = sorted({*_DIRECT_COMMANDS, *(c for s in _SCRIPTS for c in lua_commands(s))})
    ns = namespace
    patterns = [*(p for spec in specs for p in worker_key_patterns(ns, spec)),
                names.workers_key(ns)]
    read_only = [names.paused_queues_key(ns), names.paused_tenant_queues_key(ns),
                 names.paused_tenants_key(ns, "*")]
    return ["-@all", *(f"+{c}" for c in commands), *(f"~{p}" for p in patterns),
            *(f"%R~{k}" for k in read_only), f"&{names.control_channel(ns)}"]

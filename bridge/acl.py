"""The least Redis privilege a bridge needs: its queues' ready, delayed and
in-flight keys, the bridges' registry, and the commands its code sends.

Generated from the code and the topology, like the producer's rules
(:mod:`ingest.acl`): the commands inside the bridge's Lua scripts are read
from the scripts' source, the keys come from :mod:`jobpipe.names`. A bridge
with these rules moves jobs of its queues to Kafka and nothing else: no other
queue, no idempotency markers (the workers'), only the state records of
queues with ``track_status`` (it marks their jobs in Kafka), no ``FLUSHALL``,
no ``KEYS``. It keeps ``CONFIG GET`` (the start-up check of eviction and AOF,
which producers with their narrower users skip) and ``CLIENT UNBLOCK`` (its
wake-up wait ends that way, see :mod:`bridge.wake`).
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge import dead, delayed, reaper, take
from jobpipe import jobstatus, names
from jobpipe.lua import lua_commands
from jobpipe.topology import QueueSpec

_SCRIPTS = (take._TAKE, take._ACK, delayed._PROMOTE, dead._REQUEUE, reaper._HEARTBEAT,
            reaper._OWN, reaper._CLAIM_LAPSED, reaper._RECOVER)
# Sent by the bridge itself: scripts by SHA (loaded once on NOSCRIPT; by body when
# pipelined on a cluster, jobpipe.pipelined), pipelines of reads, the wake-up wait
# (bridge.wake), the safety check, the heartbeat.
_DIRECT_COMMANDS = ("evalsha", "eval", "script|load", "ping", "config|get",
                    "bzpopmin", "client|setname", "client|id", "client|unblock", "llen",
                    "lrange", "smembers", "srem", "scard", "zrange", "zrem", "zadd", "zscore",
                    "zcard", "zcount")


def bridge_key_patterns(namespace: str, spec: QueueSpec) -> list[str]:
    """Every key (or key glob) a bridge of ``spec`` reads or writes."""
    ns, q = namespace, spec.name
    keys = [names.ready_key(ns, q, shard, level, own_slot=spec.shard_slots)
            for level in spec.levels for shard in range(spec.shards)]
    for slot in spec.slots:  # one set per shard with shard_slots
        keys += [names.delayed_key(ns, q, slot), names.wake_key(ns, q, slot),
                 names.inflight_pattern(ns, q, slot), names.inflight_index_key(ns, q, slot),
                 names.inflight_owners_key(ns, q, slot), names.dead_key(ns, q, slot)]
    keys.append(names.tenants_key(ns, q))  # read by the backlog of every queue
    if spec.fair:
        keys += [names.tenant_ready_key(ns, q, "*"), names.paused_tenants_key(ns, q)]
    if spec.track_status:
        keys.append(names.job_states_key(ns, q, "*"))
    return keys


def bridge_acl_rules(namespace: str, specs: Iterable[QueueSpec]) -> list[str]:
    """``ACL SETUSER`` rules (after ``reset``, before ``on >password``) of a bridge user."""
    specs = list(specs)
    scripts = list(_SCRIPTS)
    if any(spec.track_status for spec in specs):  # it marks tracked jobs in Kafka
        scripts.append(jobstatus.ADVANCE_LUA)
    commands = sorted({*_DIRECT_COMMANDS, *(c for s in scripts for c in lua_commands(s))})
    patterns = [p for spec in specs for p in bridge_key_patterns(namespace, spec)]
    return ["-@all", *(f"+{c}" for c in commands), f"~{names.bridges_key(namespace)}",
            *(f"~{p}" for p in patterns)]

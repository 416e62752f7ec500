"""The least Redis privilege a producer needs: its push path on its queues' keys.

Generated from the code and the topology, so the rule cannot drift from what
producers run: the commands inside the push script are
:data:`ingest.scripts.PUSH_LUA_COMMANDS` (kept in step with the script by a
test), the keys come from :mod:`jobpipe.names`.
A user with these rules can enqueue (sync, asyncio, HTTP intake) and nothing
else: no reading other queues, no ``FLUSHALL``, no ``KEYS``, no ``CONFIG``.

A scheduler (``jobpipe scheduler``) is a producer of the queues its schedules
name, plus Redis's clock (``TIME``) and the one sorted set where it records up
to when each schedule is decided (``ZMSCORE``/``ZADD`` on
:func:`jobpipe.names.schedules_last_key`).

Without ``CONFIG GET`` the producer's start-up safety check cannot run; give
the producer ``redis.require_safe = false`` (it warns once) and let the bridge,
whose user is broader, make that check.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.scripts import PUSH_LUA_COMMANDS
from jobpipe import jobstatus, names
from jobpipe.errors import ConfigError
from jobpipe.lua import lua_commands
from jobpipe.schedule import ScheduleSpec
from jobpipe.topology import QueueSpec, Topology

# Commands the producer sends itself (not inside the script): the script by its
# SHA (redis-py loads it once on NOSCRIPT), the MULTI/LLEN/LPUSH/ZADD(wake)/EXEC
# fast path of plain batches (ingest.plan.PushPlan.multi_commands), and the
# intake's health check.
_DIRECT_COMMANDS = ("evalsha", "script|load", "multi", "llen", "lpush", "zadd", "hsetnx",
                    "expire", "exec", "ping")


def producer_key_patterns(namespace: str, spec: QueueSpec) -> list[str]:
    """Every key (or key glob) a producer of ``spec`` may write or count.

    Names and queue names never contain glob characters (``*?[\\``), so the
    patterns match exactly these keys.
    """
    ns, q = namespace, spec.name
    keys = [names.ready_key(ns, q, shard, level, own_slot=spec.shard_slots)
            for level in spec.levels for shard in range(spec.shards)]
    for slot in spec.slots:  # one set per shard with shard_slots
        keys += [names.delayed_key(ns, q, slot), names.unique_key(ns, q, "*", slot),
                 names.wake_key(ns, q, slot)]
    if spec.fair:
        keys += [names.tenants_key(ns, q), names.tenant_ready_key(ns, q, "*")]
    if spec.track_status:  # the push script starts each job's state record; cancel()
        keys += [names.job_states_key(ns, q, "*"), names.cancel_requests_key(ns, q)]
    return keys


def producer_acl_rules(namespace: str, specs: Iterable[QueueSpec]) -> list[str]:
    """``ACL SETUSER`` rules (after ``reset``, before ``on >password``) of a producer user."""
    specs = list(specs)
    commands = {*_DIRECT_COMMANDS, *PUSH_LUA_COMMANDS}
    if any(spec.track_status for spec in specs):  # status(), wait() and cancel()
        commands |= {"hget", *lua_commands(jobstatus.CANCEL_LUA)}
    patterns = [p for spec in specs for p in producer_key_patterns(namespace, spec)]
    return ["-@all", *(f"+{c}" for c in sorted(commands)), *(f"~{p}" for p in patterns)]


# What a scheduler pass sends besides enqueueing (ingest.scheduler.Scheduler.run_pass).
_SCHEDULER_COMMANDS = ("time", "zmscore", "zadd")


def scheduler_acl_rules(namespace: str, topology: Topology,
                        schedules: Iterable[ScheduleSpec]) -> list[str]:
    """``ACL SETUSER`` rules of a scheduler user: a producer of the queues the
    ``schedules`` name, plus its clock and its decided-up-to set."""
    queues = sorted({spec.queue for spec in schedules})
    if not queues:  # select() would read "none" as "every queue"
        raise ConfigError("schedules: none declared (add a [schedules.NAME] table)")
    rules = producer_acl_rules(namespace, topology.select(queues))
    commands = [f"+{c}" for c in _SCHEDULER_COMMANDS if f"+{c}" not in rules]
    return [rules[0], *commands, *rules[1:], f"~{names.schedules_last_key(namespace)}"]

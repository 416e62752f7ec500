"""The least Redis privilege a producer needs: its push path on its queues' keys.

Generated from the code and the topology, so the rule cannot drift from what
producers run: the commands inside the push script are
:data:`ingest.scripts.PUSH_LUA_COMMANDS` (kept in step with the script by a
test), the keys come from :mod:`jobpipe.names`.
A user with these rules can enqueue (sync, asyncio, HTTP intake) and nothing
else: no reading other queues, no ``FLUSHALL``, no ``KEYS``, no ``CONFIG``.

Without ``CONFIG GET`` the producer's start-up safety check cannot run; give
the producer ``redis.require_safe = false`` (it warns once) and let the bridge,
whose user is broader, make that check.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.scripts import PUSH_LUA_COMMANDS
from jobpipe import names
from jobpipe.topology import QueueSpec

# Commands the producer sends itself (not inside the script): the script by its
# SHA (redis-py loads it once on NOSCRIPT), the MULTI/LLEN/LPUSH/ZADD(wake)/EXEC
# fast path of plain batches (ingest.plan.PushPlan.multi_commands), and the
# intake's health check.
_DIRECT_COMMANDS = ("evalsha", "script|load", "multi", "llen", "lpush", "zadd", "exec",
                    "ping")


def producer_key_patterns(namespace: str, spec: QueueSpec) -> list[str]:
    """Every key (or key glob) a producer of ``spec`` may write or count.

    Names and queue names never contain glob characters (``*?[\\``), so the
    patterns match exactly these keys.
    """
    ns, q = namespace, spec.name
    keys = [names.ready_key(ns, q, shard, level)
            for level in spec.levels for shard in range(spec.shards)]
    keys += [names.delayed_key(ns, q), names.unique_key(ns, q, "*"), names.wake_key(ns, q)]
    if spec.fair:
        keys += [names.tenants_key(ns, q), names.tenant_ready_key(ns, q, "*")]
    return keys


def producer_acl_rules(namespace: str, specs: Iterable[QueueSpec]) -> list[str]:
    """``ACL SETUSER`` rules (after ``reset``, before ``on >password``) of a producer user."""
    commands = sorted({*_DIRECT_COMMANDS, *PUSH_LUA_COMMANDS})
    patterns = [p for spec in specs for p in producer_key_patterns(namespace, spec)]
    return ["-@all", *(f"+{c}" for c in commands), *(f"~{p}" for p in patterns)]

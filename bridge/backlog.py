"""Redis backlog per queue (and per tenant of fair queues), for metrics and idleness."""

from __future__ import annotations

import redis

from jobpipe import metrics, names
from jobpipe.topology import QueueSpec

MAX_TENANT_LABELS = 50  # beyond this, per-tenant gauges would swamp Prometheus


def measure_backlog(client: redis.Redis[bytes], ns: str,
                    specs: list[QueueSpec]) -> dict[str, dict[str, int]]:
    """Jobs waiting per queue and state (``ready``, ``delayed``, ``dead``, and
    ``tenant:<name>`` for fair queues), in two round trips."""
    pipe = client.pipeline(transaction=False)
    for spec in specs:
        pipe.smembers(names.tenants_key(ns, spec.name))
    tenant_sets = pipe.execute()
    plan: list[tuple[str, str]] = []
    for spec, tenants in zip(specs, tenant_sets, strict=True):
        q = spec.name
        if spec.fair:
            for t in sorted(x.decode() for x in tenants):
                plan.append((q, f"tenant:{t}"))
                pipe.llen(names.tenant_ready_key(ns, q, t))
        else:
            for level in spec.levels:
                for shard in range(spec.shards):
                    plan.append((q, "ready"))
                    pipe.llen(names.ready_key(ns, q, shard, level, own_slot=spec.shard_slots))
        for slot in spec.slots:
            plan.append((q, "delayed"))
            pipe.zcard(names.delayed_key(ns, q, slot))
            plan.append((q, "dead"))
            pipe.llen(names.dead_key(ns, q, slot))
    out: dict[str, dict[str, int]] = {s.name: {"ready": 0, "delayed": 0, "dead": 0}
                                      for s in specs}
    for (q, state), n in zip(plan, pipe.execute(), strict=True):
        states = out[q]
        states[state] = states.get(state, 0) + int(n)
        if state.startswith("tenant:"):
            states["ready"] += int(n)
    return out


def publish_backlog(backlog: dict[str, dict[str, int]]) -> None:
    """Set the ``jobpipe_redis_backlog_jobs`` gauges."""
    for q, states in backlog.items():
        tenants = 0
        for state, n in states.items():
            if state.startswith("tenant:"):
                tenants += 1
                if tenants > MAX_TENANT_LABELS:
                    continue
            metrics.REDIS_BACKLOG.labels(q, state).set(n)

"""Where a job lands in Redis: the one rule producers, the bridge's delayed promotion
and the worker's resume of a parked tenant all follow.

- a fair queue's job goes to its tenant's list (``DEFAULT_TENANT`` when it has none);
- any other job goes to the ready list of its priority level, on the shard of its
  key (``crc32``, so one key keeps one order) or, unkeyed, wherever a counter points.

A job that comes back to Redis as bytes is routed by reading only its ``priority``
and ``tenant`` (:func:`read_route`), never by decoding it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from jobpipe import names
from jobpipe.envelope import peek_key
from jobpipe.errors import EnvelopeError
from jobpipe.topology import QueueSpec, shard_for

DEFAULT_TENANT = "default"
"""The tenant of a job that names none (fair queues, pausing, rate limits)."""


def tenant_or_default(tenant: str | None) -> str:
    """The tenant a job counts as: its own, else :data:`DEFAULT_TENANT`.

    The one home of that fallback: fair lists, pausing, parking and rate limits
    all key a job by this, so a job without a tenant is the same job to each.
    """
    return tenant or DEFAULT_TENANT


def read_route(raw: bytes, spec: QueueSpec) -> tuple[int, str | None]:
    """The priority level and tenant of an encoded job, reading only what routing needs.

    A level beyond the queue's levels is clamped to its lowest one, so the job
    still runs rather than being sent to a list or topic that does not exist. A
    tenant that is not a string reads as none.

    Raises:
        EnvelopeError: ``invalid_json``, ``not_an_object`` or ``wrong_type``.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", str(exc), raw) from exc
    if not isinstance(obj, dict):
        got = type(obj).__name__
        raise EnvelopeError("not_an_object", f"expected a JSON object, got {got}", raw)
    level = obj.get("priority") or 0
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise EnvelopeError("wrong_type", "field 'priority' must be an integer >= 0", raw)
    tenant = obj.get("tenant")
    return min(level, len(spec.priorities) - 1), tenant if isinstance(tenant, str) else None


def priority_level(raw: bytes, spec: QueueSpec) -> int:
    """The priority level of an encoded job (see :func:`read_route`).

    Raises:
        EnvelopeError: ``invalid_json``, ``not_an_object`` or ``wrong_type``.
    """
    return read_route(raw, spec)[0]


@dataclass(frozen=True, slots=True)
class Routes:
    """The Redis lists one queue's jobs wait in, and the choice among them.

    Attributes:
        spec: the queue.
        ready: ``ready[level][shard]`` list keys.
        tenant_prefix: a tenant list key without the tenant name.
    """

    spec: QueueSpec
    ready: tuple[tuple[str, ...], ...]
    tenant_prefix: str

    @classmethod
    def of(cls, ns: str, spec: QueueSpec) -> Routes:
        """The lists of ``spec`` in namespace ``ns`` (build once, reuse)."""
        ready = tuple(tuple(names.ready_key(ns, spec.name, shard, level,
                                            own_slot=spec.shard_slots)
                            for shard in range(spec.shards)) for level in spec.levels)
        return cls(spec, ready, names.tenant_ready_key(ns, spec.name, ""))

    def tenant_list(self, tenant: str | None) -> str:
        """The ready list of one tenant of a fair queue."""
        return self.tenant_prefix + tenant_or_default(tenant)

    def ready_list(self, key: bytes | None, level: int, spread: int) -> str:
        """The ready list of a job of a queue that is not fair."""
        return self.ready[level][shard_for(key, self.spec.shards, spread)]

    def of_raw(self, raw: bytes, spread: int, tenant: str | None = None,
               shard: int | None = None) -> tuple[str, str]:
        """The list an encoded job (re-)enters, and its tenant ('' unless fair).

        ``tenant`` overrides the one the job carries; ``shard``, when given, is
        the shard chosen already (a job promoted from its shard's delayed set,
        queues with ``shard_slots``). Bytes that are not a job go to level 0 of
        the queue: a worker dead-letters them with their reason.
        """
        try:
            level, carried = read_route(raw, self.spec)
        except EnvelopeError:
            level, carried = 0, None
        if self.spec.fair:
            chosen = tenant_or_default(tenant or carried)
            return self.tenant_prefix + chosen, chosen
        if shard is not None:
            return self.ready[level][shard], ""
        return self.ready_list(peek_key(raw), level, spread), ""

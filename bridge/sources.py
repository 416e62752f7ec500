"""Which lists a bridge takes from, and in what order (round robin over slots).

A *slot* is either one ready list of a plain queue (per priority level and
shard) or a whole fair queue, whose tenants share its slot by weighted
deficit round robin (:class:`bridge.fair.FairScheduler`) and only while the
queue's Kafka lag allows (:func:`bridge.fair.lag_allows`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from bridge.batch import Source
from bridge.fair import FairScheduler
from jobpipe import names
from jobpipe.topology import QueueSpec


def ready_sources(ns: str, spec: QueueSpec, bridge_id: str) -> list[Source]:
    """Every ready list of a plain queue, level 0 first."""
    out = []
    for level in spec.levels:
        for shard in range(spec.shards):
            key = names.ready_key(ns, spec.name, shard, level)
            inflight = names.inflight_list_key(ns, spec.name, bridge_id, key)
            out.append(Source(spec.name, key, inflight, names.main_topic(ns, spec.name, level)))
    return out


def tenant_source(ns: str, spec: QueueSpec, bridge_id: str, tenant: str) -> Source:
    """The tenant list of a fair queue."""
    key = names.tenant_ready_key(ns, spec.name, tenant)
    return Source(spec.name, key, names.inflight_list_key(ns, spec.name, bridge_id, key),
                  names.main_topic(ns, spec.name, 0), tenant)


@dataclass(slots=True)
class FairSlot:
    """A fair queue in the rotation."""

    spec: QueueSpec
    scheduler: FairScheduler


Slot = Source | FairSlot
Take = Callable[[Source, int], list[bytes]]


class Rotation:
    """Round robin over slots; one take per call of :meth:`take_next`."""

    def __init__(self, client: redis.Redis[bytes], ns: str, specs: list[QueueSpec],
                 bridge_id: str, batch_size: int) -> None:
        self._client = client
        self._ns = ns
        self._specs = specs
        self._batch_size = batch_size
        self._fair = {s.name: FairSlot(s, FairScheduler(batch_size, s.tenant_weights))
                      for s in specs if s.fair}
        self._slots: list[Slot] = []
        self._cursor = 0
        self.bridge_id = bridge_id
        self.empty_streak = 0
        self.rebind(bridge_id)

    def rebind(self, bridge_id: str) -> None:
        """Take into the in-flight lists of ``bridge_id`` (a new id after a fence)."""
        self.bridge_id = bridge_id
        slots: list[Slot] = []
        for spec in self._specs:
            if spec.fair:
                slots.append(self._fair[spec.name])
            else:
                slots += ready_sources(self._ns, spec, bridge_id)
        self._slots = slots
        self._cursor = 0

    @property
    def ready_keys(self) -> list[str]:
        """The ready lists of the plain queues."""
        return [s.key for s in self._slots if isinstance(s, Source)]

    def take_next(self, take: Take,
                  allowed: Callable[[QueueSpec], bool]) -> tuple[Source, list[bytes]] | None:
        """Try slots in turn until one yields jobs; ``None`` after a full empty pass."""
        for _ in range(len(self._slots)):
            slot = self._slots[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._slots)
            if isinstance(slot, FairSlot):
                got = self._take_fair(slot, take, allowed)
            else:
                items = take(slot, self._batch_size)
                got = (slot, items) if items else None
            if got is not None:
                self.empty_streak = 0
                return got
        self.empty_streak += 1
        return None

    def _take_fair(self, slot: FairSlot, take: Take,
                   allowed: Callable[[QueueSpec], bool]) -> tuple[Source, list[bytes]] | None:
        if not allowed(slot.spec):
            return None
        sched = slot.scheduler
        for _ in range(2 * len(sched.tenants) + 2):
            pick = sched.next_take(self._batch_size)
            if pick is None:
                if not self._refresh(slot):
                    return None
                continue
            tenant, n = pick
            source = tenant_source(self._ns, slot.spec, self.bridge_id, tenant)
            items = take(source, n)
            sched.record(tenant, n, len(items))
            if items:
                return source, items
        return None

    def _refresh(self, slot: FairSlot) -> bool:
        """Start a new DRR round from the registry; False when no tenant waits."""
        q = slot.spec.name
        pipe = self._client.pipeline(transaction=False)
        pipe.smembers(names.tenants_key(self._ns, q))
        pipe.smembers(names.paused_tenants_key(self._ns, q))
        tenants, paused = pipe.execute()
        slot.scheduler.refresh(sorted(t.decode() for t in tenants),
                               [t.decode() for t in paused])
        return bool(slot.scheduler.tenants)

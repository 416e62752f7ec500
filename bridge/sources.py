"""Which lists a bridge takes from, and in what order (round robin over slots).

A *slot* is either all ready lists of a plain queue (per priority level and
shard; one take call covers them; a queue with ``shard_slots`` is one slot per
shard, its lists sharing that shard's hash tag) or a whole fair queue, whose
tenants share its slot by weighted deficit round robin (:class:`bridge.fair.FairScheduler`)
and only while the queue's Kafka lag allows (:func:`bridge.fair.lag_allows`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from bridge.batch import Source
from bridge.fair import FairScheduler
from jobpipe import names
from jobpipe.topology import QueueSpec


def ready_sources(ns: str, spec: QueueSpec, bridge_id: str) -> list[list[Source]]:
    """Every ready list of a plain queue, level 0 first, in one group per hash
    slot (one group, unless the queue has ``shard_slots``): one take call each."""
    groups: dict[int | None, list[Source]] = {slot: [] for slot in spec.slots}
    for level in spec.levels:
        for shard in range(spec.shards):
            slot = spec.slot_of(shard)
            key = names.ready_key(ns, spec.name, shard, level, own_slot=spec.shard_slots)
            groups[slot].append(Source(spec.name, key, names.inflight_list_key(bridge_id, key),
                                       names.main_topic(ns, spec.name, level), slot=slot))
    return list(groups.values())


def tenant_source(ns: str, spec: QueueSpec, bridge_id: str, tenant: str) -> Source:
    """The tenant list of a fair queue."""
    key = names.tenant_ready_key(ns, spec.name, tenant)
    return Source(spec.name, key, names.inflight_list_key(bridge_id, key),
                  names.main_topic(ns, spec.name, 0), tenant)


@dataclass(slots=True)
class ListsSlot:
    """A plain queue's ready lists in the rotation, taken from in one call.

    Attributes:
        sources: the lists, level 0 first.
        maybe: per list, whether it may hold jobs: cleared by a take that got
            less than a full batch from it (it was empty then), set again by
            :meth:`Rotation.rouse`.
        cursor: the list the next call starts at, when the in-flight room
            allows fewer lists than may hold jobs.
    """

    sources: list[Source]
    maybe: list[bool]
    cursor: int = 0


@dataclass(slots=True)
class FairSlot:
    """A fair queue in the rotation.

    Attributes:
        maybe: whether a tenant list may hold jobs (cleared when a turn took none).
        held_since: monotonic time its Kafka lag held it back, else ``None``.
    """

    spec: QueueSpec
    scheduler: FairScheduler
    maybe: bool = True
    held_since: float | None = None


Slot = ListsSlot | FairSlot
TakeLists = Callable[[Sequence[Source], int], list[list[bytes]]]
Taken = list[tuple[Source, list[bytes]]]


class Rotation:
    """Round robin over slots (a plain queue's lists, or a fair queue); one
    slot's take per call of :meth:`take_next`.

    A list a take left empty (it gave less than a full batch) is not taken from
    again until :meth:`rouse`, which the bridge calls whenever jobs may have
    arrived (a wake-up, a promotion, a heartbeat, a fence, a Redis failure).
    So a bridge woken by one push makes one take call for the queue, not one
    per list plus a pass that finds them all empty.
    """

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
                for sources in ready_sources(self._ns, spec, bridge_id):
                    slots.append(ListsSlot(sources, [True] * len(sources)))
        self._slots = slots
        self._cursor = 0
        self.rouse()

    def rouse(self) -> None:
        """Jobs may have arrived anywhere: every list may hold jobs again."""
        for slot in self._slots:
            if isinstance(slot, FairSlot):
                slot.maybe, slot.held_since = True, None
            else:
                slot.maybe = [True] * len(slot.sources)

    @property
    def may_hold_jobs(self) -> bool:
        """Whether some list may hold jobs (else a take would find none)."""
        return any(slot.maybe if isinstance(slot, FairSlot) else any(slot.maybe)
                   for slot in self._slots)

    @property
    def held_since(self) -> float | None:
        """Since when (monotonic) a fair queue's Kafka lag holds it back, if one does."""
        held = [s.held_since for s in self._fair.values() if s.held_since is not None]
        return min(held) if held else None

    def take_next(self, take: TakeLists, allowed: Callable[[QueueSpec], bool],
                  room: int) -> Taken:
        """Try slots in turn until one yields jobs: up to ``room`` batches (one per
        list); ``[]`` after a pass where none did (no call for a slot left empty)."""
        for _ in range(len(self._slots)):
            slot = self._slots[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._slots)
            if isinstance(slot, FairSlot):
                got = self._take_fair(slot, take, allowed)
            else:
                got = self._take_lists(slot, take, room)
            if got:
                self.empty_streak = 0
                return got
        self.empty_streak += 1
        return []

    def planned_take(self, room: int) -> list[Source] | None:
        """The lists a take sent ahead of the idle wait takes from (:mod:`bridge.wake`):
        those of the only slot, as after :meth:`rouse`. ``None`` unless the bridge
        has one slot and it is a plain queue's: with more, or a fair queue, what
        to take is chosen once the bridge is awake."""
        if len(self._slots) != 1 or not isinstance(self._slots[0], ListsSlot):
            return None
        slot = self._slots[0]
        count = len(slot.sources)
        return [slot.sources[(slot.cursor + i) % count] for i in range(min(count, room))]

    def took_ahead(self, sources: list[Source], taken: list[list[bytes]]) -> Taken:
        """Account for a take of :meth:`planned_take`'s ``sources`` made ahead, after
        the wake-up that ended the wait roused the lists."""
        slot = self._slots[0]
        assert isinstance(slot, ListsSlot)
        index = {id(source): i for i, source in enumerate(slot.sources)}  # planned's own
        got = self._took(slot, [index[id(source)] for source in sources], taken)
        if got:
            self.empty_streak = 0
        return got

    def _take_lists(self, slot: ListsSlot, take: TakeLists, room: int) -> Taken:
        count = len(slot.sources)
        order = [(slot.cursor + i) % count for i in range(count)]
        picked = [i for i in order if slot.maybe[i]][:room]
        if not picked:
            return []
        return self._took(slot, picked, take([slot.sources[i] for i in picked],
                                             self._batch_size))

    def _took(self, slot: ListsSlot, picked: list[int], taken: list[list[bytes]]) -> Taken:
        slot.cursor = (picked[-1] + 1) % len(slot.sources)
        got = []
        for i, items in zip(picked, taken, strict=True):
            slot.maybe[i] = len(items) >= self._batch_size  # less: the list was emptied
            if items:
                got.append((slot.sources[i], items))
        return got

    def _take_fair(self, slot: FairSlot, take: TakeLists,
                   allowed: Callable[[QueueSpec], bool]) -> Taken:
        if not slot.maybe:
            return []
        if not allowed(slot.spec):
            slot.maybe, slot.held_since = False, time.monotonic()
            return []
        sched = slot.scheduler
        for _ in range(2 * len(sched.tenants) + 2):
            pick = sched.next_take(self._batch_size)
            if pick is None:
                if not self._refresh(slot):
                    break
                continue
            tenant, n = pick
            source = tenant_source(self._ns, slot.spec, self.bridge_id, tenant)
            items = take([source], n)[0]
            sched.record(tenant, n, len(items))
            if items:
                return [(source, items)]
        slot.maybe = False
        return []
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

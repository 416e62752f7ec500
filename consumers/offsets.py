"""Contiguous-offset tracking: what a partition may safely commit.

Jobs of one partition run concurrently and finish in any order. The offset a
worker stores is always one past the highest *contiguous* completed offset, so
a crash re-delivers every unfinished job and never skips one (the consumer in
confluent-kafka's examples stores after processing for the same reason).

Pure: no Kafka, no Redis.
"""

from __future__ import annotations

from collections import deque

TPO = tuple[str, int, int]
"""A message's topic, partition and offset."""


class PartitionOffsets:
    """In-flight and completed offsets of one partition.

    Offsets must be added in increasing order (Kafka delivers them so); they
    may complete in any order. Gaps between added offsets (compacted or
    transaction-marker offsets) are fine: only added offsets are waited for.
    """

    __slots__ = ("_committed", "_done", "_pending")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._done: set[int] = set()
        self._committed: int | None = None

    def add(self, offset: int) -> None:
        """Record a fetched offset that has not completed yet."""
        self._pending.append(offset)

    def complete(self, offset: int) -> None:
        """Record that the job at ``offset`` is finished (done, retried or dead-lettered)."""
        self._done.add(offset)
        pending, done = self._pending, self._done
        while pending and pending[0] in done:
            head = pending.popleft()
            done.discard(head)
            self._committed = head + 1

    @property
    def committable(self) -> int | None:
        """One past the highest contiguous completed offset; ``None`` before the first."""
        return self._committed

    @property
    def in_flight(self) -> int:
        """Offsets added and not yet contiguously completed."""
        return len(self._pending)


class OffsetTracker:
    """Per-partition :class:`PartitionOffsets`, keyed by ``(topic, partition)``.

    :meth:`take_committable` returns only the partitions whose committable
    offset moved since the last call, so storing them is cheap.
    """

    __slots__ = ("_dirty", "_parts", "_stored")

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], PartitionOffsets] = {}
        self._stored: dict[tuple[str, int], int] = {}
        self._dirty: set[tuple[str, int]] = set()

    def partition(self, topic: str, partition: int) -> PartitionOffsets:
        """The tracker of one partition (created on first use)."""
        key = (topic, partition)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = PartitionOffsets()
        return part

    def add(self, topic: str, partition: int, offset: int) -> None:
        """Record a fetched offset."""
        self.partition(topic, partition).add(offset)

    def complete(self, topic: str, partition: int, offset: int) -> None:
        """Record a finished offset."""
        key = (topic, partition)
        part = self._parts.get(key)
        if part is None:  # the partition was revoked and dropped meanwhile
            return
        part.complete(offset)
        self._dirty.add(key)

    def take_committable(self) -> dict[tuple[str, int], int]:
        """Partitions whose committable offset advanced since the last call."""
        out: dict[tuple[str, int], int] = {}
        for key in self._dirty:
            part = self._parts.get(key)
            if part is None or part.committable is None:
                continue
            if self._stored.get(key) != part.committable:
                out[key] = self._stored[key] = part.committable
        self._dirty.clear()
        return out

    def in_flight(self) -> int:
        """Offsets waited for across every partition."""
        return sum(p.in_flight for p in self._parts.values())

    def in_flight_of(self, topic: str, partition: int) -> int:
        """Offsets waited for on one partition."""
        part = self._parts.get((topic, partition))
        return 0 if part is None else part.in_flight

    def drop(self, topic: str, partition: int) -> None:
        """Forget a partition (revoked or lost): its offsets are no longer ours."""
        key = (topic, partition)
        self._parts.pop(key, None)
        self._stored.pop(key, None)
        self._dirty.discard(key)

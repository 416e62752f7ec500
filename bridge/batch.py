"""A batch of jobs in flight, and the order in which batches may be acknowledged.

Pure logic: no Redis, no Kafka (delivery reports arrive as duck-typed
``(err, msg)`` pairs).

Why acks go in take order: a bridge has one in-flight list per ready list it
takes from. The take script pushes each batch onto the LEFT end, so the list
reads newest batch ... oldest batch from left to right, and the oldest batch is
exactly the rightmost ``len(batch)`` items. Acknowledging by count (``LTRIM
0 -(n+1)``) is therefore correct only for the oldest batch; :class:`AckOrder`
releases a batch only when it and every older batch of the same list are
complete. Delivery reports may arrive in any order across partitions; the
order of acks does not depend on them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Source:
    """A list the bridge takes from, and where its jobs go.

    Attributes:
        queue: queue name.
        key: the ready (or tenant) list.
        inflight: this bridge's in-flight list for ``key``.
        topic: Kafka topic of its jobs.
        tenant: the tenant of a fair queue's list, else ``None``.
        slot: the shard whose hash tag the list carries (queues with
            ``shard_slots``), else ``None``: which in-flight index, owners set
            and dead list go with it.
    """

    queue: str
    key: str
    inflight: str
    topic: str
    tenant: str | None = None
    slot: int | None = None


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A job Kafka refused for good."""

    raw: bytes
    reason: str
    error: str


@dataclass(slots=True, eq=False)
class Batch:
    """Jobs taken in one move, produced to Kafka, acknowledged together.

    Attributes:
        source: where the jobs came from.
        items: the envelope bytes, oldest first.
        started_s: monotonic time of the take.
        pending: jobs without a final outcome yet.
        errors: failed delivery reports not yet classified, ``(error, raw)``.
        dead: jobs that failed for good (counted as settled).
        retry: jobs to produce again.
        retry_at_s: monotonic time before which ``retry`` waits.
    """

    source: Source
    items: list[bytes]
    started_s: float
    pending: int = 0
    errors: list[tuple[Any, bytes]] = field(default_factory=list)
    dead: list[DeadJob] = field(default_factory=list)
    retry: list[bytes] = field(default_factory=list)
    retry_at_s: float = 0.0

    def __post_init__(self) -> None:
        self.pending = len(self.items)

    def on_delivery(self, err: Any, msg: Any) -> None:
        """librdkafka delivery report of one job (called from ``poll``)."""
        if err is None:
            self.pending -= 1
        else:
            self.errors.append((err, msg.value()))

    def settle_dead(self, job: DeadJob) -> None:
        """Record a permanent failure: the job is done with, as a dead job."""
        self.dead.append(job)
        self.pending -= 1

    @property
    def complete(self) -> bool:
        """Every job has a final outcome: delivered, or dead."""
        return self.pending <= 0 and not self.errors and not self.retry


@dataclass(slots=True)
class AckOrder:
    """Outstanding batches per in-flight list, in take order."""

    _lists: dict[str, deque[Batch]] = field(default_factory=dict)
    _count: int = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Batch]:
        for batches in self._lists.values():
            yield from batches

    def add(self, batch: Batch) -> None:
        """Track a batch just taken (always the newest of its list)."""
        self._lists.setdefault(batch.source.inflight, deque()).append(batch)
        self._count += 1

    def ackable(self) -> list[list[Batch]]:
        """Per in-flight list, the complete batches at its oldest end, oldest first."""
        out = []
        for batches in self._lists.values():
            prefix = []
            for batch in batches:
                if not batch.complete:
                    break
                prefix.append(batch)
            if prefix:
                out.append(prefix)
        return out

    def remove(self, prefix: list[Batch]) -> None:
        """Forget a prefix returned by :meth:`ackable` once Redis acknowledged it."""
        batches = self._lists[prefix[0].source.inflight]
        for batch in prefix:
            assert batches[0] is batch, "acks must follow take order"
            batches.popleft()
            self._count -= 1
        if not batches:
            del self._lists[prefix[0].source.inflight]

    def clear(self) -> list[Batch]:
        """Drop every batch (the bridge was fenced); returns what was dropped."""
        dropped = list(self)
        self._lists.clear()
        self._count = 0
        return dropped

    def jobs(self) -> int:
        """Jobs in all outstanding batches."""
        return sum(len(b.items) for b in self)

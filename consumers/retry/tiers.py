"""Retry tier decisions: which tier a topic is, when its head job is due, where it goes.

Pure: no Kafka, no Redis. :mod:`consumers.retry.relay` does the I/O.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from jobpipe.topology import QueueSpec

T = TypeVar("T")

JITTER_HEADER = "jp-retry-jitter-ms"
"""Header of a retry record: milliseconds it waits on top of its tier's delay."""


@dataclass(frozen=True, slots=True)
class TierRoute:
    """What a retry tier topic is: the queue it belongs to and its delay."""

    spec: QueueSpec
    delay_s: float

    @property
    def delay_ms(self) -> int:
        """The tier delay in whole milliseconds."""
        return round(self.delay_s * 1000)


def tier_routes(ns: str, specs: list[QueueSpec]) -> dict[str, TierRoute]:
    """Map every retry tier topic of ``specs`` to its queue and delay.

    Built from :meth:`QueueSpec.retry_topics`, so a topic name is never parsed.
    """
    return {topic: TierRoute(spec, delay_s) for spec in specs
            for topic, delay_s in zip(spec.retry_topics(ns), spec.retry_tiers_s, strict=True)}


def jitter_header(jitter_s: float) -> tuple[str, bytes]:
    """The header that carries a retry's jitter."""
    return JITTER_HEADER, str(round(jitter_s * 1000)).encode()


def jitter_ms(headers: list[tuple[str, Any]] | dict[str, Any] | None, delay_ms: int) -> int:
    """The jitter a retry record carries, in ms; 0 when absent or unreadable, and
    never more than its tier delay (a corrupt header cannot park a job forever)."""
    for name, value in headers.items() if isinstance(headers, dict) else headers or ():
        if name == JITTER_HEADER:
            try:
                return max(0, min(int(value), delay_ms))
            except (TypeError, ValueError):
                return 0
    return 0


def wait_ms(timestamp_ms: int | None, delay_ms: int, now_ms: int, jitter: int = 0) -> int:
    """Milliseconds until a message written at ``timestamp_ms`` is due (0 = due now):
    its tier delay plus its ``jitter`` ms after it was written.

    A message without a timestamp is due at once. A timestamp in the future
    (producer clock ahead of ours) never holds a job longer than delay + jitter.
    """
    if timestamp_ms is None or timestamp_ms <= 0:
        return 0
    wait = delay_ms + jitter
    return max(0, min(timestamp_ms + wait - now_ms, wait))


def next_wake_s(due_ms: list[int], now_ms: int, idle_s: float) -> float:
    """How long the relay may block in poll: until the earliest held partition is
    due, at most ``idle_s``."""
    if not due_ms:
        return idle_s
    return max(0.0, min(idle_s, (min(due_ms) - now_ms) / 1000))


class DueQueue(Generic[T]):
    """Retries read from Kafka and waiting in memory until due, earliest first.

    Jobs of one partition may leave in a different order than they were read:
    each leaves when *it* is due (tier delay plus its own jitter), so jitter
    really spreads a burst of retries instead of piling them up behind the
    latest-due one. ``held_bytes`` bounds the memory this takes.
    """

    __slots__ = ("_heap", "_seq", "held_bytes")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, tuple[str, int], int, T]] = []
        self._seq = 0  # ties leave in the order they were read
        self.held_bytes = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due_ms: int, partition: tuple[str, int], size: int, item: T) -> None:
        """Hold ``item`` (read from ``partition``, ``size`` bytes) until ``due_ms``."""
        self._seq += 1
        heapq.heappush(self._heap, (due_ms, self._seq, partition, size, item))
        self.held_bytes += size

    def pop_due(self, now_ms: int) -> list[T]:
        """Every held item due at ``now_ms``, earliest first."""
        out = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            _, _, _, size, item = heapq.heappop(heap)
            self.held_bytes -= size
            out.append(item)
        return out

    def next_due_ms(self) -> int | None:
        """When the earliest held item is due; ``None`` when nothing is held."""
        return self._heap[0][0] if self._heap else None

    def drop(self, partitions: set[tuple[str, int]]) -> None:
        """Forget the items of ``partitions`` (revoked: their new owner re-reads them)."""
        kept = [entry for entry in self._heap if entry[2] not in partitions]
        heapq.heapify(kept)
        self._heap = kept
        self.held_bytes = sum(entry[3] for entry in kept)

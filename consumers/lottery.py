"""Weighted lottery among lanes with work waiting (Nextdoor's Taskworker).

A lane is one ``(queue, priority level)``; its tickets are
``spec.weight * spec.priorities[level]``. Each draw picks one lane among those
that have work, with probability proportional to its tickets: high weight goes
first most of the time, and a low weight is never starved, because an empty
high lane holds no tickets. The shares hold from a worker's first job: it
runs nothing until each partition it was assigned has delivered its first
fetch (see :mod:`consumers.first_fetch`).

Pure: no Kafka, no Redis.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

from jobpipe.topology import QueueSpec

T = TypeVar("T")


def lane_weight(spec: QueueSpec, level: int) -> int:
    """Tickets of one lane: the queue's weight times its level's weight."""
    return spec.weight * spec.priorities[level]


class Lottery(Generic[T]):
    """Draws among candidates with integer weights.

    Args:
        rng: a ``random.Random`` (seed it in tests).
    """

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def draw(self, candidates: Sequence[tuple[T, int]]) -> T | None:
        """One winner among ``(item, weight)`` pairs; ``None`` when there are none.

        Weights must be >= 1 (a zero weight would starve its lane).
        """
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0][0]
        total = 0
        for _, weight in candidates:
            total += weight
        ticket = self._rng.random() * total
        for item, weight in candidates:
            ticket -= weight
            if ticket < 0:
                return item
        return candidates[-1][0]

"""Whether a starting worker has seen what each of its partitions holds.

A worker serving two queues whose first fetches arrive apart (one partition's
start offset or first fetch answered a moment later, as on a freshly started
broker) would otherwise run only the first queue's jobs until the other's
arrive: the lottery can share only among lanes that hold work. So a starting
worker runs nothing until every partition of its first assignment has either
delivered a message or reported its end (``enable.partition.eof``), bounded by
``START_HOLD_MAX_S`` so one unreachable partition cannot keep the rest idle.

Pure: no Kafka, no Redis (it is given topic-partition pairs).
"""

from __future__ import annotations

START_HOLD_MAX_S = 10.0  # the longest a starting worker waits for its first fetches

TP = tuple[str, int]


class FirstFetch:
    """The partitions of the first assignment that have not shown their content yet."""

    __slots__ = ("_assigned", "_pending")

    def __init__(self) -> None:
        self._assigned = False
        self._pending: set[TP] = set()

    @property
    def done(self) -> bool:
        """Every partition of the first assignment delivered a message or its end."""
        return self._assigned and not self._pending

    def assigned(self, tps: list[TP]) -> None:
        """Partitions were assigned; only the first assignment is waited for."""
        if not self._assigned:
            self._assigned = True
            self._pending.update(tps)

    def seen(self, tps: set[TP]) -> None:
        """These partitions delivered a message or reported their end."""
        self._pending -= tps

    def forget(self, tps: list[TP]) -> None:
        """Revoked or lost before their first fetch: nothing to wait for."""
        self._pending.difference_update(tps)

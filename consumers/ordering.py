"""Per-key serialisation for ``spec.ordered`` queues.

Jobs with the same key run one at a time, in arrival order; jobs with other
keys (or none) run concurrently. A job whose key is busy waits in that key's
line; finishing a job hands back the next one of its key.

Pure: no Kafka, no Redis.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class KeyLines(Generic[T]):
    """Lines of waiting items, one per busy key."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines: dict[str, deque[T]] = {}

    def admit(self, key: str | None, item: T) -> bool:
        """Whether ``item`` may run now; otherwise it waits behind its key."""
        if key is None:
            return True
        line = self._lines.get(key)
        if line is None:
            self._lines[key] = deque()
            return True
        line.append(item)
        return False

    def release(self, key: str | None) -> T | None:
        """Finish the running item of ``key``; returns the next one to run, if any."""
        if key is None:
            return None
        line = self._lines.get(key)
        if line is None:
            return None
        if line:
            return line.popleft()
        del self._lines[key]
        return None

    def discard(self, drop: Callable[[T], bool]) -> list[T]:
        """Remove waiting items for which ``drop`` is true (revoked partitions)."""
        removed: list[T] = []
        for line in self._lines.values():
            keep = [i for i in line if not drop(i)]
            if len(keep) != len(line):
                removed.extend(i for i in line if drop(i))
                line.clear()
                line.extend(keep)
        return removed

    @property
    def waiting(self) -> int:
        """Items waiting behind a busy key."""
        return sum(len(line) for line in self._lines.values())

    @property
    def busy_keys(self) -> int:
        """Keys with an item running."""
        return len(self._lines)

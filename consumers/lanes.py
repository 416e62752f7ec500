"""Lanes: per ``(queue, priority level)`` buffers of jobs waiting to run.

The runner pushes prepared jobs into their lane and takes the next one with
:meth:`Lanes.next`: a weighted lottery among unpaused lanes with work waiting,
then per-key admission for ordered queues. A lane past ``buffer_max`` reports
itself full so the fetcher pauses its partitions (memory stays bounded, and a
busy high lane never crowds a low lane out of the fetch); it is resumed at
half that.

Pure: no Kafka, no Redis.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from consumers.lottery import Lottery, lane_weight
from consumers.ordering import KeyLines
from consumers.registry import Task
from jobpipe.envelope import Job
from jobpipe.topology import QueueSpec


class Lane:
    """One ``(queue, level)`` and its waiting jobs."""

    __slots__ = ("buffer", "full", "level", "ordered", "paused", "spec", "topic", "weight")

    def __init__(self, spec: QueueSpec, level: int, topic: str) -> None:
        self.spec = spec
        self.level = level
        self.topic = topic
        self.weight = lane_weight(spec, level)
        self.ordered = spec.ordered
        self.buffer: deque[Item] = deque()
        self.paused = False  # an operator paused the queue
        self.full = False  # past the high-water mark: fetching is paused


class Item:
    """One job on its way through the worker, with where it came from."""

    __slots__ = ("finished_ns", "job", "lane", "msg_key", "offset", "partition", "result",
                 "run_s", "task", "timestamp_ms", "topic")

    def __init__(self, topic: str, partition: int, offset: int, msg_key: bytes | None,
                 job: Job, task: Task, lane: Lane, timestamp_ms: int | None = None) -> None:
        self.topic = topic
        self.timestamp_ms = timestamp_ms
        self.partition = partition
        self.offset = offset
        self.msg_key = msg_key
        self.job = job
        self.task = task
        self.lane = lane
        self.run_s = 0.0
        self.finished_ns = 0  # wall clock when the handler returned
        self.result: Any = None  # the handler's return value (kept by some queues)


class Lanes:
    """Every lane of a worker, and the choice of the next job.

    Args:
        lanes: the lanes, one per main topic.
        buffer_max: jobs a lane holds before it reports itself full.
        rng: lottery randomness (seed it in tests).
    """

    def __init__(self, lanes: list[Lane], buffer_max: int,
                 rng: random.Random | None = None) -> None:
        self.all = lanes
        self.by_topic = {lane.topic: lane for lane in lanes}
        self.buffer_max = buffer_max
        self._low = buffer_max // 2
        self._lottery: Lottery[Lane] = Lottery(rng)
        self._lines: KeyLines[Item] = KeyLines()
        self._ready: deque[Item] = deque()  # released from a key line: run next
        self.changed = False  # a lane's ``full`` flag flipped since last looked at
        self.held = False  # nothing may run yet (a starting worker, see first_fetch)

    def push(self, item: Item) -> None:
        """Queue a prepared job in its lane."""
        lane = item.lane
        lane.buffer.append(item)
        if not lane.full and len(lane.buffer) >= self.buffer_max:
            lane.full = self.changed = True

    def next(self) -> Item | None:
        """The next job to run, or ``None`` when nothing may run now."""
        if self.held:
            return None
        if self._ready:
            return self._ready.popleft()
        only = self.all[0] if len(self.all) == 1 else None
        while True:
            if only is not None:
                lane: Lane | None = only if only.buffer and not only.paused else None
            else:
                lane = self._lottery.draw(
                    [(ln, ln.weight) for ln in self.all if ln.buffer and not ln.paused])
            if lane is None:
                return None
            item = lane.buffer.popleft()
            if lane.full and len(lane.buffer) <= self._low:
                lane.full = False
                self.changed = True
            if lane.ordered and not self._lines.admit(item.job.key, item):
                continue  # its key is busy: it waits in the key's line
            return item

    def release(self, item: Item) -> None:
        """A job finished running: let the next job of its key (ordered queues) go."""
        if item.lane.ordered:
            nxt = self._lines.release(item.job.key)
            if nxt is not None:
                self._ready.append(nxt)

    def drop(self, gone: Callable[[Item], bool]) -> int:
        """Remove waiting jobs for which ``gone`` is true; returns how many."""
        dropped = len(self._lines.discard(gone))
        for queue in (self._ready, *(lane.buffer for lane in self.all)):
            keep = [i for i in queue if not gone(i)]
            dropped += len(queue) - len(keep)
            queue.clear()
            queue.extend(keep)
        for lane in self.all:
            if lane.full and len(lane.buffer) <= self._low:
                lane.full = False
                self.changed = True
        return dropped

    def waiting(self) -> int:
        """Jobs waiting in buffers, key lines and the ready line."""
        return (len(self._ready) + self._lines.waiting
                + sum(len(lane.buffer) for lane in self.all))

    def has_runnable(self) -> bool:
        """Whether :meth:`next` could return something (ignoring busy keys)."""
        return bool(self._ready) or any(ln.buffer and not ln.paused for ln in self.all)

    def full_topics(self) -> set[str]:
        """Topics whose lane is full (their fetching should pause)."""
        self.changed = False
        return {lane.topic for lane in self.all if lane.full}

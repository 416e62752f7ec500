"""Which worker process ran which partition, and when: the partition trace.

Each worker process of a run writes ``<wall-clock ms> ready`` to
``<run_dir>/runs/worker-<pid>.trace`` once its app is loaded (it is about to
join the consumer group), then appends ``<wall-clock ms> <topic> <partition>``
the first time it runs a job of a partition within each :data:`TICK_MS` tick:
a few dozen short writes a second, each written at once (``os.write``), so a
kill -9 loses none of them. From these lines :mod:`loadtest.failover` tells
when a killed worker's partitions ran jobs again in another process, and how
long its restart took to start and then to run its first job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TRACE_DIR = "runs"
TICK_MS = 100

TP = tuple[str, int]
Run = tuple[int, TP]  # (wall-clock ms, (topic, partition))
READY = b"ready"


@dataclass
class Trace:
    """One worker process's trace: when it was ready, and its runs, oldest first."""

    ready_ms: int | None = None
    runs: list[Run] = field(default_factory=list)


class PartitionTrace:
    """Appends this process's partition ticks to its own trace file. Not fork-safe:
    create one per process (as :mod:`loadtest.tasks` does)."""

    def __init__(self, run_dir: str | Path) -> None:
        folder = Path(run_dir) / TRACE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"worker-{os.getpid()}.trace"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._last_tick: dict[TP, int] = {}

    def ready(self, now_ms: int) -> None:
        """This process is ready to join the group (its app is loaded)."""
        os.write(self._fd, b"%d %s\n" % (now_ms, READY))

    def ran(self, topic: str, partition: int, now_ms: int) -> None:
        """A job of ``topic``/``partition`` ran at ``now_ms``; written once per tick."""
        tick = now_ms // TICK_MS
        if self._last_tick.get((topic, partition)) == tick:
            return
        self._last_tick[(topic, partition)] = tick
        os.write(self._fd, f"{now_ms} {topic} {partition}\n".encode())

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_traces(run_dir: str | Path) -> dict[int, Trace]:
    """Every worker process's trace, by pid. A line torn by a kill -9 (no newline)
    is skipped."""
    out: dict[int, Trace] = {}
    folder = Path(run_dir) / TRACE_DIR
    for path in sorted(folder.glob("worker-*.trace")) if folder.exists() else []:
        trace = out[int(path.stem.removeprefix("worker-"))] = Trace()
        for line in path.read_bytes().split(b"\n")[:-1]:
            parts = line.split()
            if len(parts) == 2 and parts[1] == READY:
                trace.ready_ms = int(parts[0])
            elif len(parts) == 3:
                trace.runs.append((int(parts[0]), (parts[1].decode(), int(parts[2]))))
        trace.runs.sort()
    return out

"""CPU used by each process of a run: sampled from ``/proc/<pid>/stat``.

Once a second a thread reads utime + stime of every process the run cares
about (senders, bridges, workers, the runner itself, Redis and each Kafka
broker) and keeps the cumulative CPU seconds per process name. A process
restarted by the chaos schedule keeps its name: the CPU of its earlier PIDs is
carried over (minus what they used after their last sample). The runner turns
the samples into cores used and microseconds of CPU per job over any window
(:func:`window_usage`, pure).

Redis and Kafka are found by the port they listen on (``/proc/net/tcp`` gives
the socket inode, ``/proc/<pid>/fd`` the owner), so services started by
``jobpipe dev up`` or by hand are measured alike, as long as they run as this
user; otherwise they are left out and the report says so.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
TCP_LISTEN = "0A"


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float | None:
    """utime + stime of ``pid`` in seconds, or None when it is gone.

    With ``reaped_children``, plus the CPU of the children it has waited for
    (cutime + cstime): Redis forks a child for each AOF rewrite and RDB save,
    and that child's CPU (seconds per rewrite on a big dataset) is Redis's
    cost, counted once Redis reaps it.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14, stime 15, cutime 16
    # and cstime 17 (1-based).
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS_PER_S


def counts_reaped_children(name: str) -> bool:
    """Whether the process named ``name`` is charged its reaped children's CPU:
    Redis (``redis``, ``redis-<port>``), whose AOF rewrites and RDB saves run in
    forked children. Not the runner, which reaps the stages the chaos kills."""
    return name == "redis" or name.startswith("redis-")


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 or IPv6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == TCP_LISTEN and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def listening_pid(port: int) -> int | None:
    """The PID listening on TCP ``port``, if it runs as a user whose fds we may read."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not wanted:
        return None
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit() and _owns_socket(entry.name, wanted):
                return int(entry.name)
    return None


def _owns_socket(pid: str, sockets: set[str]) -> bool:
    try:
        with os.scandir(f"/proc/{pid}/fd") as fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in sockets:
                        return True
                except OSError:
                    continue
    except OSError:
        return False
    return False


def service_pids(redis_ports: Mapping[str, int], kafka_ports: Iterable[int]) -> dict[str, int]:
    """Each Redis by name (``redis``, or ``redis-<port>`` per cluster node) and
    ``kafka-1``, ``kafka-2`` ... mapped to the PIDs serving those ports."""
    found: dict[str, int] = {}
    for name, port in redis_ports.items():
        if (pid := listening_pid(port)) is not None:
            found[name] = pid
    for n, port in enumerate(kafka_ports, start=1):
        if (pid := listening_pid(port)) is not None:
            found[f"kafka-{n}"] = pid
    return found


@dataclass
class CpuSeries:
    """Samples so far: seconds since the run's start, and cumulative CPU s per process."""

    t_s: list[float] = field(default_factory=list)
    cpu_s: dict[str, list[float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"t_s": self.t_s, "cpu_s": self.cpu_s}


class CpuSampler:
    """A thread sampling every process's CPU each ``interval_s`` until :meth:`stop`.

    Args:
        pids: called at each sample; the current ``name -> PID`` of every
            process to measure (a name whose PID changed was restarted).
        start_s: wall-clock start of the run.
        with_children: whether a name's reaped children count as its own
            (see :func:`cpu_seconds`).
    """

    def __init__(self, pids: Callable[[], Mapping[str, int | None]], start_s: float,
                 interval_s: float = 1.0,
                 with_children: Callable[[str], bool] = lambda name: False) -> None:
        self.series = CpuSeries()
        self.start_s = start_s
        self.interval_s = interval_s
        self._pids = pids
        self._with_children = with_children
        self._carried: dict[str, float] = {}   # CPU of a name's earlier PIDs
        self._last: dict[str, tuple[int, float]] = {}  # name -> (pid, its last CPU s)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cpu")
        self._thread.start()

    def sample(self) -> None:
        """Read every process's CPU now."""
        now = round(time.time() - self.start_s, 3)
        values: dict[str, float | None] = {}
        for name, pid in self._pids().items():
            used = (cpu_seconds(pid, reaped_children=self._with_children(name))
                    if pid is not None else None)
            last = self._last.get(name)
            if last is not None and last[0] != pid:
                self._carried[name] = self._carried.get(name, 0.0) + last[1]
                del self._last[name]
            if used is None:
                values[name] = None
                continue
            self._last[name] = (pid or 0, used)
            values[name] = self._carried.get(name, 0.0) + used
        with self._lock:
            n = len(self.series.t_s)
            self.series.t_s.append(now)
            for name, value in values.items():
                self.series.cpu_s.setdefault(name, [None] * n).append(value)
            for column in self.series.cpu_s.values():
                if len(column) == n:
                    column.append(None)

    def stop(self) -> CpuSeries:
        """Take a last sample, stop the thread and return the samples."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()
        return self.series

    def snapshot(self) -> CpuSeries:
        """A copy of the samples so far (for the live view)."""
        with self._lock:
            return CpuSeries(list(self.series.t_s),
                             {k: list(v) for k, v in self.series.cpu_s.items()})

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """One process's CPU over a window.

    Attributes:
        name: ``producer-0``, ``bridge-0``, ``worker-0``, ``redis``, ``kafka-1``, ``runner``.
        cores: CPU seconds per wall second (1.0 = one core busy).
        us_per_job: microseconds of CPU per job finished in the window (None without jobs).
    """

    name: str
    cores: float
    us_per_job: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"name": self.name, "cores": round(self.cores, 3),
                "us_per_job": None if self.us_per_job is None else round(self.us_per_job, 1)}


def _value_at(times: list[float], column: list[float | None], t: float,
              after: bool) -> tuple[float, float] | None:
    """The sample nearest ``t`` from inside the window (first at or after ``t`` when
    ``after``, else last at or before it), as ``(time, cpu s)``."""
    pairs = [(ts, v) for ts, v in zip(times, column, strict=True) if v is not None]
    if after:
        inside = [p for p in pairs if p[0] >= t]
        return inside[0] if inside else None
    inside = [p for p in pairs if p[0] <= t]
    return inside[-1] if inside else None


def window_usage(series: CpuSeries, first_s: float, last_s: float,
                 jobs: int) -> list[ProcessUsage]:
    """Each process's cores and µs per job between ``first_s`` and ``last_s``.

    The window is narrowed to the samples inside it (taken once a second); a
    process with fewer than two samples there is left out.
    """
    out: list[ProcessUsage] = []
    for name, column in series.cpu_s.items():
        begin = _value_at(series.t_s, column, first_s, after=True)
        end = _value_at(series.t_s, column, last_s, after=False)
        if begin is None or end is None or end[0] <= begin[0]:
            continue
        used_s = max(0.0, end[1] - begin[1])
        span_s = end[0] - begin[0]
        rate = jobs / (last_s - first_s) if last_s > first_s else 0.0
        jobs_in_span = rate * span_s
        out.append(ProcessUsage(name, used_s / span_s,
                                used_s * 1e6 / jobs_in_span if jobs_in_span else None))
    return out


def total_row(rows: list[ProcessUsage], exclude: frozenset[str]) -> ProcessUsage:
    """The sum over ``rows`` except the names in ``exclude`` (the runner's own)."""
    kept = [r for r in rows if r.name not in exclude]
    per_job = [r.us_per_job for r in kept if r.us_per_job is not None]
    return ProcessUsage("all processes", sum(r.cores for r in kept),
                        sum(per_job) if per_job else None)

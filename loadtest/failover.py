"""How fast a killed worker's jobs ran elsewhere, and its restart ran jobs again.

Pure: fed the partition traces (:mod:`loadtest.partition_trace`) and the chaos
kills. For each worker kill, at ``kill`` and restarted at ``restart``:

    partitions   those whose last job before the kill (within RECENT_S) ran in
                 the killed process: what it owned when it died
    failover_s   kill -> every one of them ran a job in another process (a
                 survivor, or the restarted process when it took them back)
    back_s       restart -> the restarted process ran its first job, the sum of
    start_s      restart -> its app was loaded (Python start: the machine's load)
    join_s       app loaded -> its first job (joining the group: the protocol's part)

``None`` means it did not happen before the run ended.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from loadtest.partition_trace import TP, Trace

RECENT_S = 2.0


@dataclass(frozen=True, slots=True)
class Handover:
    """What one worker kill cost (seconds; ``None``: not before the run ended).

    Attributes:
        target: the killed process's name (``worker-0``).
        kill_s, restart_s: when it was killed and restarted, since the run's start.
        partitions: how many partitions it was running when killed.
        failover_s: kill -> all of them ran jobs in another process.
        back_s: restart -> the restarted process ran its first job.
        start_s, join_s: back_s split at the moment its app was loaded.
        taken_by_restart: how many of them the restarted process ran first.
    """

    target: str
    kill_s: float
    restart_s: float | None
    partitions: int
    failover_s: float | None
    back_s: float | None
    start_s: float | None
    join_s: float | None
    taken_by_restart: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def owned_at(traces: dict[int, Trace], pid: int, at_ms: int) -> set[TP]:
    """Partitions whose last job in the RECENT_S before ``at_ms`` ran in ``pid``."""
    last: dict[TP, tuple[int, int]] = {}  # tp -> (ms, pid) of its latest run
    since = at_ms - int(RECENT_S * 1000)
    for p, trace in traces.items():
        for ms, tp in trace.runs:
            if since <= ms <= at_ms and ms >= last.get(tp, (-1, 0))[0]:
                last[tp] = (ms, p)
    return {tp for tp, (_, p) in last.items() if p == pid}


def handover(traces: dict[int, Trace], start_ms: int, kill: dict[str, Any]) -> Handover:
    """The figures of one kill (a chaos kill record: ``t_s``, ``target``, ``pid``,
    ``restarted_pid``, ``restarted_t_s``)."""
    dead, new = kill["pid"], kill.get("restarted_pid")
    kill_ms = start_ms + int(kill["t_s"] * 1000)
    owned = owned_at(traces, dead, kill_ms)
    first: dict[TP, tuple[int, int]] = {}  # tp -> (ms, pid) of its first run elsewhere
    for p, trace in traces.items():
        if p == dead:
            continue
        for ms, tp in trace.runs:
            if tp in owned and ms > kill_ms and ms < first.get(tp, (2**63, 0))[0]:
                first[tp] = (ms, p)
    failover_s = None
    if owned and len(first) == len(owned):
        failover_s = _seconds(max(ms for ms, _ in first.values()) - kill_ms)
    restart_s = kill.get("restarted_t_s")
    restarted = traces.get(new) if new is not None else None
    restart_ms = start_ms + int(restart_s * 1000) if restart_s is not None else None
    ready_ms = restarted.ready_ms if restarted is not None else None
    first_ms = restarted.runs[0][0] if restarted is not None and restarted.runs else None
    return Handover(kill["target"], kill["t_s"], restart_s, len(owned), failover_s,
                    back_s=_between(restart_ms, first_ms), start_s=_between(restart_ms, ready_ms),
                    join_s=_between(ready_ms, first_ms),
                    taken_by_restart=sum(1 for _, p in first.values() if p == new))


def _seconds(ms: int) -> float:
    return round(ms / 1000, 2)


def _between(from_ms: int | None, to_ms: int | None) -> float | None:
    return None if from_ms is None or to_ms is None else _seconds(to_ms - from_ms)


def worker_handovers(traces: dict[int, Trace], start_ms: int,
                     kills: list[dict[str, Any]]) -> list[Handover]:
    """One :class:`Handover` per worker kill."""
    return [handover(traces, start_ms, k) for k in kills
            if str(k.get("target", "")).startswith("worker") and k.get("pid") is not None]


def median_or_none(values: list[float | None]) -> float | None:
    """The median, or ``None`` when any value is missing (one stuck handover is not
    hidden by two quick ones) or there are none."""
    if not values or any(v is None for v in values):
        return None
    return round(statistics.median(v for v in values if v is not None), 2)


def summarize_handovers(handovers: list[Handover]) -> dict[str, Any]:
    """The report's ``chaos.handovers``: each kill, and the medians (fail-over over
    the kills of a worker that was running partitions)."""
    return {"each": [h.to_dict() for h in handovers],
            "failover_s_median": median_or_none([h.failover_s for h in handovers
                                                 if h.partitions]),
            "back_s_median": median_or_none([h.back_s for h in handovers]),
            "start_s_median": median_or_none([h.start_s for h in handovers]),
            "join_s_median": median_or_none([h.join_s for h in handovers])}

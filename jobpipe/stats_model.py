"""What ``jobpipe stats`` shows, without the I/O: snapshots, rates, JSON, a table.

:mod:`jobpipe.stats` reads Redis and Kafka into a :class:`Snapshot`; this
module turns one or two snapshots into rates, a JSON document and a rich
table. It imports neither redis nor confluent_kafka, so it is unit-tested
with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue at one moment.

    Attributes:
        queue: queue name.
        ready: jobs in the ready lists (every shard and level, or every tenant list).
        delayed: jobs in the delayed set.
        inflight: jobs the bridges took and Kafka has not acknowledged, all bridges.
        dead: jobs Kafka refused for good (the bridge's dead list).
        parked: jobs held for paused tenants.
        paused: the queue is paused.
        paused_tenants: tenants paused on this queue.
        tenants_waiting: fair queues: tenants with jobs waiting.
        lag: consumer group -> topic -> messages not yet committed.
        produced_total: sum of the main topics' end offsets (jobs ever bridged).
        committed_total: sum of the workers group's committed offsets on them.
        dlq_size: messages in the dead-letter topic (end - start offsets).
        dlq_end_total: end offset of the dead-letter topic (for its rate).
    """

    queue: str
    ready: int = 0
    delayed: int = 0
    inflight: int = 0
    dead: int = 0
    parked: int = 0
    paused: bool = False
    paused_tenants: tuple[str, ...] = ()
    tenants_waiting: int = 0
    lag: dict[str, dict[str, int]] = field(default_factory=dict)
    produced_total: int = 0
    committed_total: int = 0
    dlq_size: int = 0
    dlq_end_total: int = 0

    @property
    def backlog(self) -> int:
        """Everything still in Redis: ready, delayed, in flight and parked."""
        return self.ready + self.delayed + self.inflight + self.parked

    def group_lag(self, group: str) -> int:
        """Total lag of one consumer group over this queue's topics."""
        return sum(self.lag.get(group, {}).values())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every queue of a namespace at one moment.

    Attributes:
        namespace: the namespace read.
        taken_at_s: ``time.monotonic()`` when it was read (for rates).
        wall_time_s: ``time.time()`` when it was read (for humans and JSON).
        bridges_alive: bridges whose heartbeat has not lapsed.
        queues: one entry per queue, in topology order.
    """

    namespace: str
    taken_at_s: float
    wall_time_s: float
    bridges_alive: int
    queues: tuple[QueueSnapshot, ...]


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-second rates of one queue between two snapshots.

    Attributes:
        bridged_per_s: jobs appended to the main topics.
        completed_per_s: jobs the workers group committed.
        dead_lettered_per_s: jobs appended to the DLQ.
    """

    bridged_per_s: float
    completed_per_s: float
    dead_lettered_per_s: float


def compute_rates(previous: Snapshot | None, current: Snapshot) -> dict[str, Rates]:
    """Rates per queue from the counter deltas between two snapshots.

    Returns:
        Empty when there is no earlier snapshot (or no time passed). Negative
        deltas (topics recreated) count as zero.
    """
    if previous is None:
        return {}
    elapsed_s = current.taken_at_s - previous.taken_at_s
    if elapsed_s <= 0:
        return {}
    before = {q.queue: q for q in previous.queues}
    rates: dict[str, Rates] = {}
    for q in current.queues:
        old = before.get(q.queue)
        if old is None:
            continue

        def per_s(now: int, then: int) -> float:
            return max(0, now - then) / elapsed_s

        rates[q.queue] = Rates(
            bridged_per_s=per_s(q.produced_total, old.produced_total),
            completed_per_s=per_s(q.committed_total, old.committed_total),
            dead_lettered_per_s=per_s(q.dlq_end_total, old.dlq_end_total),
        )
    return rates


def to_json(snapshot: Snapshot, rates: dict[str, Rates]) -> dict[str, Any]:
    """A JSON-ready document: stable keys, scripts may rely on them.

    ``rates`` of a queue is ``null`` when only one snapshot was taken.
    """
    queues: dict[str, Any] = {}
    for q in snapshot.queues:
        rate = rates.get(q.queue)
        queues[q.queue] = {
            "redis": {"ready": q.ready, "delayed": q.delayed, "inflight": q.inflight,
                      "dead": q.dead, "parked": q.parked, "backlog": q.backlog,
                      "tenants_waiting": q.tenants_waiting},
            "kafka": {"lag": q.lag,
                      "lag_total": {group: q.group_lag(group) for group in q.lag},
                      "dlq_size": q.dlq_size, "produced_total": q.produced_total,
                      "committed_total": q.committed_total},
            "paused": q.paused,
            "paused_tenants": list(q.paused_tenants),
            "rates": None if rate is None else {
                "bridged_per_s": round(rate.bridged_per_s, 3),
                "completed_per_s": round(rate.completed_per_s, 3),
                "dead_lettered_per_s": round(rate.dead_lettered_per_s, 3)},
        }
    return {"namespace": snapshot.namespace, "time": snapshot.wall_time_s,
            "bridges_alive": snapshot.bridges_alive, "queues": queues}


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


# Columns of the table, most important first: a narrow terminal drops them from the end.
COLUMNS = ("queue", "ready", "lag", "DLQ", "in/s", "done/s", "paused", "inflight", "delayed",
           "retry lag", "DLQ/s", "dead", "parked")
_LEFT = frozenset({"queue", "paused"})


def _cells(q: QueueSnapshot, rate: Rates | None, groups: tuple[str, str]) -> dict[str, str]:
    workers, retry = groups
    paused = "queue" if q.paused else ""
    if q.paused_tenants:
        shown = ", ".join(q.paused_tenants[:3]) + (" ..." if len(q.paused_tenants) > 3 else "")
        paused = f"{paused} tenants: {shown}".strip()
    return {
        "queue": q.queue, "ready": f"{q.ready:,}", "delayed": f"{q.delayed:,}",
        "inflight": f"{q.inflight:,}", "dead": f"{q.dead:,}", "parked": f"{q.parked:,}",
        "lag": f"{q.group_lag(workers):,}", "retry lag": f"{q.group_lag(retry):,}",
        "DLQ": f"{q.dlq_size:,}", "in/s": _rate(rate.bridged_per_s if rate else None),
        "done/s": _rate(rate.completed_per_s if rate else None),
        "DLQ/s": _rate(rate.dead_lettered_per_s if rate else None), "paused": paused,
    }


def fitting_columns(rows: list[dict[str, str]], width: int | None) -> list[str]:
    """The columns of :data:`COLUMNS` that fit in ``width`` characters with whole headers
    and cells, taken most important first, each while it still fits; all of them when
    ``width`` is ``None``. The queue column always stays."""
    if width is None:
        return list(COLUMNS)
    kept: list[str] = []
    used = 1  # the table's left border
    for name in COLUMNS:
        # One space of padding either side and a border after each column.
        need = max(len(name), *(len(row[name]) for row in rows)) + 3 if rows else len(name) + 3
        if kept and used + need > width:
            continue
        kept.append(name)
        used += need
    return kept


def render_table(snapshot: Snapshot, rates: dict[str, Rates], groups: tuple[str, str],
                 width: int | None = None) -> Table:
    """A rich table, one row per queue.

    Args:
        groups: the workers and retry consumer group ids, in that order.
        width: the terminal's width: columns that would not fit whole are left out
            (least important first) and named under the table, instead of every
            header being cut short. ``None``: every column.
    """
    rows = [_cells(q, rates.get(q.queue), groups) for q in snapshot.queues]
    shown = fitting_columns(rows, width)
    hidden = [name for name in COLUMNS if name not in shown]
    caption = (f"not shown at this width: {', '.join(hidden)} (--json has all)" if hidden
               else None)
    table = Table(title=f"jobpipe {snapshot.namespace}: {snapshot.bridges_alive} bridge(s) alive",
                  title_justify="left", caption=caption, caption_justify="left")
    for name in shown:
        table.add_column(name, justify="left" if name in _LEFT else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[name] for name in shown))
    return table

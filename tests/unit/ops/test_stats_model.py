"""jobpipe stats without I/O: rates, JSON shape, the table."""

from __future__ import annotations

import json

from rich.console import Console

from jobpipe.stats_model import (
    COLUMNS,
    QueueSnapshot,
    Snapshot,
    compute_rates,
    render_table,
    to_json,
)

GROUPS = ("ns.workers", "ns.retry")


def _snap(t_s: float, produced: int, committed: int, dlq_end: int, **kw) -> Snapshot:
    q = QueueSnapshot("email", ready=5, delayed=2, inflight=1, dead=0, parked=3,
                      paused_tenants=("acme",),
                      lag={"ns.workers": {"ns.email": produced - committed},
                           "ns.retry": {"ns.email.retry.5s": 4}},
                      produced_total=produced, committed_total=committed,
                      dlq_size=dlq_end, dlq_end_total=dlq_end, **kw)
    return Snapshot("ns", t_s, 1_700_000_000.0 + t_s, 2, (q,))


def test_rates_are_counter_deltas_over_elapsed_time():
    rates = compute_rates(_snap(10.0, 100, 50, 1), _snap(12.0, 300, 250, 5))
    assert rates["email"].bridged_per_s == 100.0
    assert rates["email"].completed_per_s == 100.0
    assert rates["email"].dead_lettered_per_s == 2.0


def test_no_rates_from_one_snapshot_or_a_counter_that_went_back():
    assert compute_rates(None, _snap(1.0, 1, 1, 0)) == {}
    rates = compute_rates(_snap(1.0, 500, 500, 9), _snap(2.0, 10, 10, 0))
    assert rates["email"].bridged_per_s == 0.0


def test_json_has_backlog_lag_dlq_and_pauses():
    doc = to_json(_snap(1.0, 10, 4, 2, paused=True), {})
    json.dumps(doc)
    email = doc["queues"]["email"]
    assert email["redis"] == {"ready": 5, "delayed": 2, "inflight": 1, "dead": 0, "parked": 3,
                              "backlog": 11, "tenants_waiting": 0}
    assert email["kafka"]["lag_total"] == {"ns.workers": 6, "ns.retry": 4}
    assert email["kafka"]["dlq_size"] == 2
    assert email["paused"] is True
    assert email["paused_tenants"] == ["acme"]
    assert email["rates"] is None
    assert doc["bridges_alive"] == 2


def test_table_shows_one_row_per_queue_with_rates():
    previous, current = _snap(0.0, 0, 0, 0), _snap(1.0, 50, 40, 1)
    console = Console(width=200, record=True)
    console.print(render_table(current, compute_rates(previous, current), GROUPS))
    text = console.export_text()
    assert "email" in text
    assert "tenants: acme" in text
    assert "50.0" in text


def test_at_80_columns_every_shown_header_is_whole_and_the_rest_are_named():
    previous, current = _snap(0.0, 0, 0, 0), _snap(1.0, 50_000, 40_000, 1)
    console = Console(width=80, record=True)
    console.print(render_table(current, compute_rates(previous, current), GROUPS, console.width))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "queue" in line)
    shown = [name for name in COLUMNS if name in header]
    assert "…" not in text
    assert {"queue", "ready", "lag", "DLQ"} <= set(shown)
    hidden = [name for name in COLUMNS if name not in shown]
    assert hidden, "13 columns cannot fit in 80: some must be left out"
    assert f"not shown at this width: {', '.join(hidden)}" in " ".join(text.split())


def test_a_wide_terminal_shows_every_column():
    current = _snap(1.0, 50, 40, 1)
    console = Console(width=200, record=True)
    console.print(render_table(current, {}, GROUPS, console.width))
    header = next(line for line in console.export_text().splitlines() if "queue" in line)
    assert all(name in header for name in COLUMNS)
    assert "not shown" not in console.export_text()

"""docs/scaling.md's capacity table is what ``jobpipe capacity`` plans (issue: they drifted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtest.capacity import DEFAULT_PRIMARY_MEMORY_GB, Measured, plan_capacity

DOC = Path(__file__).resolve().parents[3] / "docs" / "scaling.md"
ROWS = {"producer processes": "producers", "bridge processes": "bridges",
        "worker processes": "workers", "partitions per queue": "partitions",
        "Redis shards (primaries)": "redis_shards", "Kafka brokers": "kafka_brokers"}


def _table() -> dict[str, tuple[int, int]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in ROWS:
            rows[cells[0]] = (int(cells[1].replace(",", "")), int(cells[2].replace(",", "")))
    return rows


@pytest.mark.parametrize(("column", "target_per_s"), [(0, 50_000), (1, 500_000)])
def test_the_table_is_what_the_planner_plans(column, target_per_s):
    plan = plan_capacity(target_per_s, 50, Measured(), headroom=0.4)
    table = _table()
    assert set(table) == set(ROWS)
    assert {row: counts[column] for row, counts in table.items()} == {
        row: getattr(plan, field) for row, field in ROWS.items()}


def test_the_per_unit_figures_are_the_planner_defaults():
    text = " ".join(DOC.read_text().split())
    m = Measured()
    for phrase, value in [("a producer process", m.producer_per_s),
                          ("a bridge process", m.bridge_per_s),
                          ("a worker process", m.worker_per_s),
                          ("a partition", m.partition_per_s),
                          ("a Redis primary", m.redis_shard_per_s)]:
        assert re.search(rf"{phrase} {value:,.0f} jobs/s", text), phrase
    assert f"a broker {m.broker_bytes_per_s / 1e6:g} MB/s" in text
    assert f"{m.job_bytes}-byte jobs at replication {m.replication}" in text


def test_the_done_markers_and_aof_figures_are_the_planners():
    text = " ".join(DOC.read_text().split())
    m = Measured()
    day = plan_capacity(50_000, 50, m, headroom=0.4)
    ten_minutes = plan_capacity(50_000, 50, m, headroom=0.4, idempotency_ttl_s=600)
    assert f"about {m.marker_bytes:g} bytes of Redis memory" in text
    assert f"a day of markers is at least {day.marker_memory_gb:,.0f} GB" in text
    assert f"(`--primary-memory-gb`, {DEFAULT_PRIMARY_MEMORY_GB:g} by default)" in text
    assert f"10 minutes of markers at 50,000 jobs/s is {ten_minutes.marker_memory_gb:.1f} GB" \
        in text
    assert f"The AOF grows {m.aof_bytes_per_job:g} bytes per job" in text
    assert f"{day.aof_mb_per_s:g} MB/s at 50,000 jobs/s" in text

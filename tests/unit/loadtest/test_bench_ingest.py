"""bench ingest's table and its --call-sizes option."""

import click
import pytest
from rich.console import Console

from loadtest.bench.ingest import CallCost, _table, parse_call_sizes


def _rendered(costs: list[CallCost]) -> str:
    results = {"enqueue_p50_us": 20.0, "enqueue_p99_us": 40.0, "enqueue_p999_us": 90.0,
               "enqueue_many_jobs_s": 500_000.0, "redis_benchmark_lpush_s": None,
               "http_jobs_s": 100_000.0, "http_p99_us": 3000.0,
               "celery_apply_async_s": None, "call_cpu": costs}
    console = Console(width=200, record=True)
    console.print(_table(results))
    return console.export_text()


def test_a_call_row_adds_redis_cpu_to_the_producers() -> None:
    text = _rendered([CallCost(40, client_us=150.0, redis_us=90.0)])
    assert "CPU per enqueue_many of 40" in text
    assert "150 µs here + 90 µs Redis" in text
    assert "6.00 µs per job" in text


def test_on_a_cluster_the_row_says_it_leaves_redis_out() -> None:
    text = _rendered([CallCost(500, client_us=600.0, redis_us=None)])
    assert "600 µs here" in text
    assert "µs Redis" not in text
    assert "1.20 µs per job (without Redis)" in text


def test_call_sizes_are_parsed_and_bad_ones_named() -> None:
    assert parse_call_sizes("1,15,500") == [1, 15, 500]
    with pytest.raises(click.BadParameter, match="comma-separated list of counts"):
        parse_call_sizes("1,x")
    with pytest.raises(click.BadParameter, match="at least 1"):
        parse_call_sizes("0,5")

"""End-to-end p50/p99 from the workers' Prometheus histograms."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from dashboard.latency import METRIC, merge, parse, quantile, since


def _page(observations: dict[str, list[float]]) -> str:
    """A real /metrics page with the workers' histogram, as prometheus_client writes it."""
    registry = CollectorRegistry()
    histogram = Histogram(METRIC, "From enqueue to handler completion.", ["queue"],
                          buckets=(0.01, 0.1, 1.0), registry=registry)
    for queue, values in observations.items():
        for value in values:
            histogram.labels(queue).observe(value)
    return generate_latest(registry).decode()


def test_a_page_parses_into_cumulative_buckets_per_queue():
    parsed = parse(_page({"email": [0.005, 0.05, 0.05, 5.0], "bill": [0.5]}))
    assert parsed["email"] == {0.01: 1, 0.1: 3, 1.0: 3, math.inf: 4}
    assert parsed["bill"][1.0] == 1


def test_quantiles_interpolate_inside_the_bucket_like_prometheus():
    buckets = {0.01: 0.0, 0.1: 100.0, 1.0: 100.0, math.inf: 100.0}
    assert quantile(buckets, 0.5) == pytest.approx(0.055)
    assert quantile(buckets, 0.99) == pytest.approx(0.0991)
    assert quantile({0.1: 0.0, math.inf: 10.0}, 0.5) == 0.1  # past the last bound
    assert quantile({0.1: 0.0, math.inf: 0.0}, 0.5) is None
    assert quantile({}, 0.5) is None


def test_workers_add_up_and_a_window_is_the_difference_between_scrapes():
    first = merge([parse(_page({"email": [0.05]})), parse(_page({"email": [0.5]}))])
    assert first["email"][math.inf] == 2
    later = merge([parse(_page({"email": [0.05, 0.05, 0.05]})),
                   parse(_page({"email": [0.5]}))])
    window = since(later, first)
    assert window["email"][math.inf] == 2
    assert window["email"][0.1] == 2  # the two new jobs were both under 100 ms
    restarted = parse(_page({"email": [0.5]}))
    assert since(restarted, later)["email"] == restarted["email"]

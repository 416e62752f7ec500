"""The arithmetic of ``jobpipe bench latency``: nearest-rank percentiles, medians of rounds."""

from __future__ import annotations

from loadtest.bench.latency import Figures, _median, open_loop, percentile


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


def test_the_summary_is_the_median_round_per_figure() -> None:
    rounds = [Figures(1.0, 9.0, 20.0, 3.0, 100, {"a": 1.0, "b": 5.0}, 4.0),
              Figures(2.0, 4.0, 10.0, 1.0, 100, {"a": 3.0}, 6.0),
              Figures(3.0, 5.0, 30.0, 2.0, 100, {"a": 2.0}, 5.0)]
    assert _median(rounds) == Figures(2.0, 5.0, 20.0, 2.0, 100, {"a": 2.0}, 5.0)


def test_the_open_loop_sends_every_job_with_the_time_just_before() -> None:
    sent: list[int] = []
    assert open_loop(1000, 0.05, sent.append) == 50
    assert len(sent) == 50
    assert sent == sorted(sent)

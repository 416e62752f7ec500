"""Recording: per-stage histograms, interval logs and their merge across processes."""

import os

import orjson
import pytest

from loadtest.recording import (
    IntervalReader,
    StageRecorder,
    merge_encoded,
    read_all_intervals,
    summarize,
)
from loadtest.series import Aggregate


def test_histograms_from_several_processes_merge_into_one():
    a, b = StageRecorder("worker"), StageRecorder("worker")
    for ms in range(1, 101):
        a.record_ns("e2e", ms * 1_000_000)
    b.record_ns("e2e", 1_000_000_000, count=100)
    la, lb = a.snapshot(), b.snapshot()
    merged = merge_encoded([la["h"]["e2e"], lb["h"]["e2e"]])
    summary = summarize(merged)
    assert summary["count"] == 200
    assert 99 <= summary["p50_ms"] <= 101
    assert 995 <= summary["p99_ms"] <= 1001


def test_snapshot_starts_a_new_interval():
    rec = StageRecorder("producer")
    rec.count("sent", 5)
    assert rec.snapshot()["counts"] == {"sent": 5}
    assert rec.snapshot() is None


def test_reader_returns_whole_lines_once_and_skips_a_torn_tail(tmp_path):
    folder = tmp_path / "intervals"
    folder.mkdir()
    line = {"t": 10.0, "pid": 1, "role": "worker", "counts": {"done": 3}, "h": {}}
    path = folder / "worker-1.jsonl"
    path.write_bytes(orjson.dumps(line) + b"\n" + b'{"t": 11')
    reader = IntervalReader(tmp_path)
    assert reader.read_new() == [line]
    assert reader.read_new() == []
    with path.open("ab") as fh:
        fh.write(b'.0, "pid": 1, "role": "worker", "counts": {"done": 1}, "h": {}}\n')
    assert reader.read_new()[0]["counts"] == {"done": 1}


def test_aggregate_buckets_counts_and_percentiles_per_second(tmp_path):
    start = 1000.0
    lines = []
    for second in range(3):
        rec = StageRecorder("worker")
        rec.count("done", 10 * (second + 1))
        rec.record_ns("e2e", (second + 1) * 1_000_000, count=10)
        line = rec.snapshot()
        line["t"] = start + second + 1
        lines.append(line)
    agg = Aggregate(start, roles=frozenset({"worker"}))
    agg.add(lines)
    assert agg.rate_series("done", 3) == [10.0, 20.0, 30.0]
    assert agg.percentile_series(99, 3) == pytest.approx([1.0, 2.0, 3.0], rel=1e-3)
    assert agg.count_between("done", 1, 3) == 50
    assert agg.stage_summary()["e2e"]["count"] == 30
    assert os.fspath(tmp_path)
    assert read_all_intervals(tmp_path) == []


def test_folded_histogram_equals_one_recorded_value_by_value():
    import random

    from loadtest.recording import HIGHEST_US, histogram_of, new_histogram

    rng = random.Random(7)
    values = ([rng.randrange(0, 3000) for _ in range(5000)]
              + [rng.randrange(2000, 5_000_000) for _ in range(5000)]
              + [0, -5, 1, 2047, 2048, 2049, 4095, 4096, HIGHEST_US, HIGHEST_US * 2])
    direct = new_histogram()
    for v in values:
        direct.record_value(min(max(v, 1), HIGHEST_US))
    folded = histogram_of(values)
    assert list(folded.counts) == list(direct.counts)
    assert folded.get_total_count() == direct.get_total_count()
    assert folded.get_max_value() == direct.get_max_value()
    assert folded.get_min_value() == direct.get_min_value()
    from loadtest.recording import decode_histogram, summarize

    assert summarize(decode_histogram(folded.encode().decode())) == summarize(direct)


def test_a_jobs_times_give_the_stages_one_record_per_stage_gives():
    t0 = 1_800_000_000_000_000_000
    jobs = [  # enqueued, started, finished, kafka ms, intended
        (t0, t0 + 7_000_000, t0 + 9_500_000, (t0 + 2_000_000) // 1_000_000, t0 - 1_000_000),
        (t0, t0 + 3_000_000, t0 + 3_000_999, 0, 0),  # no Kafka time, no intended time
        (t0, t0 - 500, t0 + 1_000, (t0 + 1_000_000) // 1_000_000, t0),  # clocks skewed
    ]
    bulk, each = StageRecorder("worker"), StageRecorder("worker")
    for enqueued, started, finished, kafka_ms, intended in jobs:
        bulk.record_job_ns((enqueued, started, finished, kafka_ms, intended))
        each.record_ns("queued", started - enqueued)
        each.record_ns("run", finished - started)
        if kafka_ms:
            each.record_ns("redis", kafka_ms * 1_000_000 - enqueued)
            each.record_ns("kafka", started - kafka_ms * 1_000_000)
        if intended:
            each.record_ns("e2e", finished - intended)
        each.count("done")
    a, b = bulk.snapshot(), each.snapshot()
    assert a is not None
    assert b is not None
    assert a["counts"] == b["counts"] == {"done": 3}
    assert sorted(a["h"]) == ["e2e", "kafka", "queued", "redis", "run"]
    assert a["h"] == b["h"]
    assert bulk.snapshot() is None

"""The capacity planner's arithmetic and its parsing of targets and reports."""

import pytest

from jobpipe.errors import ConfigError
from loadtest.capacity import (
    Measured,
    measured_from_report,
    parse_target,
    plan_capacity,
    redis_primary_from_scaleout,
    with_redis_primary,
)


@pytest.mark.parametrize(("text", "value"), [("100000/s", 1e5), ("100k/s", 1e5),
                                             ("1.5M/s", 1.5e6), ("250", 250.0)])
def test_targets_parse(text, value):
    assert parse_target(text) == value


def test_bad_target_is_one_clear_error():
    with pytest.raises(ConfigError, match="--target"):
        parse_target("fast")


def test_plan_divides_the_target_by_per_process_rates_with_headroom():
    measured = Measured(bridge_per_s=30_000, worker_per_s=6_000, producer_per_s=60_000,
                        redis_shard_per_s=100_000, partition_per_s=5_000,
                        broker_bytes_per_s=50e6, job_bytes=250, replication=3)
    plan = plan_capacity(100_000, 50, measured, headroom=0.5)
    assert plan.bridges == 7  # 100k / (30k * 0.5)
    assert plan.workers == 34
    assert plan.producers == 4
    assert plan.partitions == 68  # 2 x workers beats 100k / 2.5k = 40
    assert plan.redis_shards == 2
    assert plan.kafka_brokers == 3  # replication floor: 75 MB/s fits 3 brokers at 25
    assert any("headroom 50%" in line for line in plan.assumptions)


def test_plan_warns_when_the_p99_target_is_below_any_measured_p99():
    plan = plan_capacity(1000, 5, Measured(p99_floor_ms=12.0, source="report x"))
    assert any("below the lowest p99" in w for w in plan.warnings)


def test_headroom_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="headroom"):
        plan_capacity(1000, 50, Measured(), headroom=1.0)


def test_measured_figures_come_from_a_report():
    report = {"config": {"bridges": 2, "workers": 4, "producers": 1},
              "totals": {"throughput_per_s": 10_000, "job_bytes": 200},
              "saturation": {"sustained_per_s": 16_000}, "p99_floor_ms": 3.0}
    measured = measured_from_report(report, "reports/x")
    assert measured.bridge_per_s == 8_000
    assert measured.worker_per_s == 4_000
    assert measured.p99_floor_ms == 3.0
    with pytest.raises(ConfigError, match="lacks"):
        measured_from_report({"config": {}}, "reports/y")


def test_primaries_needed_come_from_the_measured_per_primary_rate():
    # 1M jobs/s on primaries measured at 250k/s each, planned at 60 %: 1e6 / 150k = 6.7 -> 7.
    measured = with_redis_primary(Measured(), 250_000, "bench scaleout so.json")
    plan = plan_capacity(1_000_000, 50, measured, headroom=0.4)
    assert plan.redis_shards == 7
    assert "one Redis primary: 250,000 jobs/s (from bench scaleout so.json)" in plan.assumptions
    # Exactly at the planned load one primary is enough; a job more needs a second.
    assert plan_capacity(150_000, 50, measured, headroom=0.4).redis_shards == 1
    assert plan_capacity(150_001, 50, measured, headroom=0.4).redis_shards == 2


def test_the_per_primary_rate_is_read_from_the_scaleout_json():
    assert redis_primary_from_scaleout({"redis_primary_per_s": 312_000.5}, "f") == 312_000.5
    with pytest.raises(ConfigError, match="no redis_primary_per_s"):
        redis_primary_from_scaleout({"ratio": 1.2}, "f.json")
    with pytest.raises(ConfigError, match="must be > 0"):
        with_redis_primary(Measured(), 0, "--redis-primary-per-s")


def test_the_done_markers_memory_and_the_aof_traffic_come_with_the_plan():
    # 1,000 jobs/s kept a day at 97 B a marker: 8.4 GB; 600 B of AOF a job: 0.6 MB/s.
    plan = plan_capacity(1_000, 50, Measured(), headroom=0.4)
    assert plan.marker_memory_gb == 8.38
    assert plan.aof_mb_per_s == 0.6
    assert not any("done markers fill" in w for w in plan.warnings)  # under 60 % of 16 GB
    crowded = plan_capacity(50_000, 50, Measured(), headroom=0.4)
    assert crowded.marker_memory_gb == 419.04
    assert any("done markers fill 419.0 GB" in w and "idempotency_ttl_s" in w
               for w in crowded.warnings)
    # A TTL that covers the redelivery window, not a day, fits one primary.
    short = plan_capacity(50_000, 50, Measured(), headroom=0.4, idempotency_ttl_s=600)
    assert short.marker_memory_gb == 2.91
    assert not any("done markers fill" in w for w in short.warnings)
    assert plan_capacity(50_000, 50, Measured(), idempotency_ttl_s=0).marker_memory_gb == 0
    with pytest.raises(ConfigError, match="idempotency-ttl-s"):
        plan_capacity(1_000, 50, Measured(), idempotency_ttl_s=-1)


def test_the_aof_bytes_per_job_come_from_a_report_that_has_them():
    report = {"config": {"bridges": 1, "workers": 1, "producers": 1},
              "totals": {"throughput_per_s": 10_000}, "redis_aof": {"bytes_per_job": 613.4}}
    assert measured_from_report(report, "r").aof_bytes_per_job == 613.4
    report["redis_aof"] = {"bytes_per_job": None}  # every sample pair had a rewrite
    assert measured_from_report(report, "r").aof_bytes_per_job == Measured().aof_bytes_per_job

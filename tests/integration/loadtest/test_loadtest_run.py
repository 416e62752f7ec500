"""`jobpipe loadtest` end to end against real Redis and Kafka: a report, and nothing lost."""

import orjson
import pytest

from jobpipe.cli import main
from tests.redis_modes import BOTH_CLUSTER_SLOW, CLUSTER

pytestmark = pytest.mark.integration


@pytest.fixture
def in_services(services, redis_url, redis_mode, tmp_path, monkeypatch):
    """Run the load test against the test services (the Redis of ``redis_mode``),
    from ``tmp_path``."""
    monkeypatch.setenv("JOBPIPE_REDIS_URL", redis_url)
    monkeypatch.setenv("JOBPIPE_REDIS_CLUSTER", str(redis_mode == CLUSTER).lower())
    monkeypatch.setenv("JOBPIPE_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    monkeypatch.delenv("JOBPIPE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@BOTH_CLUSTER_SLOW
def test_loadtest_writes_json_and_html_report_and_loses_nothing(in_services, redis_mode,
                                                                tmp_path):
    report_dir = tmp_path / "report"
    main(["loadtest", "--rate", "2000", "--duration", "5", "--report-dir", str(report_dir),
          "--drain-timeout-s", "30"])
    report = orjson.loads((report_dir / "report.json").read_bytes())
    page = (report_dir / "report.html").read_text()
    assert report["ledger"]["lost"] == 0
    assert report["ledger"]["accepted"] == report["totals"]["offered"] == 10_000
    assert report["ledger"]["executed"] == 10_000
    assert report["stages"]["e2e"]["count"] >= 10_000
    assert "data:image/png;base64," in page
    # CPU per process: each process of the run, Redis and the broker, found by port.
    names = {p["name"] for p in report["cpu"]["run"]["processes"]}
    assert {"producer-0", "bridge-0", "worker-0", "kafka-1", "runner"} <= names
    redis_rows = {n for n in names if n.startswith("redis")}
    if redis_mode == CLUSTER:  # a row per node, named by its port
        assert len(redis_rows) >= 3
        assert all(n[len("redis-"):].isdigit() for n in redis_rows)
    else:
        assert redis_rows == {"redis"}
    assert report["cpu"]["run"]["total"]["us_per_job"] > 0
    assert report["cpu"]["run"]["instrumentation"]["recording_us_per_job"] > 0
    assert "µs CPU per job" in page
    # The AOF's growth per job (the test Redis runs with appendonly yes).
    assert report["redis_aof"]["bytes_per_job"] > 0
    assert "Redis AOF: " in page
    # The verdict is one of the two plain sentences, and the page shows it.
    assert report["verdict"]["text"].startswith(("kept up:", "not sustained:"))
    assert report["verdict"]["text"] in page


@pytest.mark.chaos
def test_a_worker_kill_reports_when_its_partitions_ran_elsewhere(in_services, tmp_path):
    report_dir = tmp_path / "report"
    main(["loadtest", "--rate", "500", "--duration", "10", "--workers", "2", "--kill", "worker",
          "--every", "6", "--report-dir", str(report_dir), "--drain-timeout-s", "90"])
    report = orjson.loads((report_dir / "report.json").read_bytes())
    assert report["ledger"]["lost"] == 0
    (kill,) = report["chaos"]["kills"]
    (handover,) = report["chaos"]["handovers"]["each"]
    assert handover["target"] == kill["target"]
    assert handover["partitions"] > 0  # it was running jobs when it was killed
    # Every job ran (lost 0), so each of its partitions ran again in another process.
    assert handover["failover_s"] is not None
    assert handover["start_s"] is not None  # the restarted process loaded its app
    assert "worker fail-over" in (report_dir / "report.html").read_text()

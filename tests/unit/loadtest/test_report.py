"""The report: JSON and a self-contained HTML page with every plot, from synthetic data."""

from rich.console import Console

from loadtest.recording import StageRecorder, cdf_points, merge_encoded, summarize
from loadtest.report import read_report, summary_table, write_report
from loadtest.saturation import StepResult, find_saturation


def synthetic_report():
    rec = StageRecorder("worker")
    for ms in range(1, 200):
        rec.record_ns("e2e", ms * 1_000_000)
        rec.record_ns("queued", ms * 500_000)
    line = rec.snapshot()
    e2e = merge_encoded([line["h"]["e2e"]])
    seconds = list(range(10))
    saturation = find_saturation([StepResult(1000, 1000, 5, [(0, 1), (1, 1)]),
                                  StepResult(2000, 1500, 90, [(0, 1), (1, 900)])], 50)
    return {
        "started_at": "2026-01-01T00:00:00Z",
        "command": "jobpipe loadtest --ramp 1000:2000:1000",
        "config": {"p99_target_ms": 50, "producers": 1, "bridges": 1, "workers": 1},
        "totals": {"offered": 3000, "sent": 3000, "throughput_per_s": 1250.0},
        "stages": {"e2e": summarize(e2e),
                   "queued": summarize(merge_encoded([line["h"]["queued"]]))},
        "ledger": {"accepted": 3000, "executed": 3000, "lost": 0, "duplicates": 2},
        "series": {"seconds": seconds, "sent_per_s": [1000.0] * 10, "done_per_s": [990.0] * 10,
                   "p50_ms": [3.0] * 10, "p99_ms": [20.0] * 10, "p99.9_ms": [None] + [30.0] * 9,
                   "backlog": {"t_s": seconds, "redis": [5] * 10, "kafka": [7] * 10}},
        "cdf": {"e2e": cdf_points(e2e)},
        "saturation": saturation.to_dict(),
        "chaos": {"kills": [{"t_s": 3.0, "target": "worker", "pid": 123}]},
        "peers": {"celery": {"throughput_per_s": 500.0, "p99_ms": 80.0,
                             "throughput_ratio": 2.5, "p99_ratio": 4.0}},
        "notes": ["latency from the intended send time"],
    }


def test_report_folder_gets_json_and_html_with_every_plot(tmp_path):
    json_path, html_path = write_report(tmp_path, synthetic_report())
    assert read_report(tmp_path)["ledger"]["lost"] == 0
    page = html_path.read_text()
    assert json_path.exists()
    assert page.count("data:image/png;base64,") == 5
    for title in ("Throughput over time", "Latency CDF", "Backlog per stage",
                  "Latency vs throughput", "Latency percentiles over time"):
        assert title in page
    assert "celery" in page


def test_report_renders_without_series():
    report = synthetic_report()
    del report["series"], report["cdf"], report["saturation"]
    from loadtest.report import render_html

    assert "data:image/png" not in render_html(report)


def test_summary_table_shows_lost_and_stages():
    head, stages = summary_table(synthetic_report())
    console = Console(width=120, record=True)
    console.print(head)
    console.print(stages)
    text = console.export_text()
    assert "lost (must be 0)" in text
    assert "end to end" in text


def test_generated_config_reads_back_as_the_same_settings(tmp_path):
    from jobpipe.settings import load_settings
    from loadtest.config_file import settings_to_toml

    original = load_settings(None, environ={}, overrides={
        "namespace": "lt1", "queues": {"a": {"partitions": 4, "fair": True},
                                       "b": {"retry_tiers_s": [1, 2], "max_backlog": None,
                                             "timeout_s": None, "rate_limit_per_s": 50.0}},
        "kafka": {"bootstrap": "127.0.0.1:1", "producer": {"linger.ms": "5"}}})
    path = tmp_path / "jobpipe.toml"
    path.write_text(settings_to_toml(original))
    assert original.topology.get("b").max_backlog is None  # unbounded, not the default
    assert load_settings(path, environ={}) == original


def test_worker_handovers_show_in_the_summary_and_the_page():
    from loadtest.failover import Handover, summarize_handovers
    from loadtest.report import render_html

    report = synthetic_report()
    report["chaos"]["handovers"] = summarize_handovers(
        [Handover("worker-0", 15.0, 16.1, 3, 7.47, 5.28, 4.57, 0.71, 3)])
    head, _ = summary_table(report)
    console = Console(width=120, record=True)
    console.print(head)
    text = console.export_text()
    assert "its partitions ran elsewhere" in text
    assert "7.47" in text
    assert "5.28" in text
    assert "worker fail-over" in render_html(report)

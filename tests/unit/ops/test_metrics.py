"""Metrics: lazy creation, Prometheus names, and the merged view of --processes N."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from jobpipe import metrics


def test_names_follow_prometheus_conventions():
    for name in metrics.exported_names():
        assert name.startswith("jobpipe_")
        assert name == name.lower()
    counters = [n for n in metrics.exported_names() if n.endswith("_total")]
    assert "jobpipe_jobs_processed_total" in counters
    assert "jobpipe_job_run_seconds_bucket" in metrics.exported_names()


def test_importing_a_metric_does_not_create_it():
    proxy = metrics._LazyMetric("jobpipe_test_lazy_total", lambda: 1 / 0)
    assert "lazy" in repr(proxy)  # created only on first attribute access


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_forked_children_are_summed_by_the_parent_even_if_a_metric_was_used_first():
    out = _run("""
        import multiprocessing, os
        from jobpipe import metrics
        from jobpipe.metrics import JOBS_PROCESSED  # imported before the switch
        JOBS_PROCESSED.labels("q", "t").inc(100)   # used before the switch, too
        metrics.prepare_multiprocess()

        def child():
            JOBS_PROCESSED.labels("q", "t").inc(5)
            metrics.BRIDGE_INFLIGHT.labels("q").set(3)

        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=child) for _ in range(3)]
        for p in procs: p.start()
        for p in procs: p.join()
        body, content_type = metrics.render_metrics()
        print(body.decode())
        for p in procs: metrics.mark_process_dead(p.pid)
        print("AFTER", metrics.render_metrics()[0].decode())
    """)
    merged, after = out.split("AFTER")
    assert 'jobpipe_jobs_processed_total{queue="q",task="t"} 15.0' in merged
    assert 'jobpipe_bridge_inflight_jobs{queue="q"} 9.0' in merged
    assert 'jobpipe_bridge_inflight_jobs{queue="q"}' not in after  # livesum: dead ones drop


def test_single_process_serve_exposes_every_family(tmp_path):
    out = _run("""
        import urllib.request
        from jobpipe import metrics
        server = metrics.serve_metrics(0, "127.0.0.1")
        metrics.JOBS_ENQUEUED.labels("q").inc()
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics").read()
        server.close()
        print(body.decode())
    """)
    assert 'jobpipe_jobs_enqueued_total{queue="q"} 1.0' in out
    for name in ("jobpipe_jobs_processed_total", "jobpipe_job_run_seconds",
                 "jobpipe_consumer_lag_messages"):
        assert f"# HELP {name.removesuffix('_total')}" in out

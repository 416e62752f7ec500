"""Every metric the dashboard and Prometheus config name is one the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from jobpipe import metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "jobpipe.json"
METRIC = re.compile(r"\bjobpipe_[a-z0-9_]+\b")


def _expressions(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "query", "definition")
                 and isinstance(v, str)]
        return found + [e for v in node.values() for e in _expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in _expressions(v)]
    return []


def test_dashboard_queries_only_name_exported_metrics():
    exprs = _expressions(json.loads(DASHBOARD.read_text()))
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert len(used) >= 10
    assert used - metrics.exported_names() == set()


def test_dashboard_covers_every_metric_family():
    used = {m for e in _expressions(json.loads(DASHBOARD.read_text()))
            for m in METRIC.findall(e)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in used}
    exported = {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in metrics.exported_names()}
    assert exported - families == set()


def test_dashboard_is_provisioned_from_the_mounted_folder():
    provider = yaml.safe_load((ROOT / "docker/grafana/provisioning/dashboards/jobpipe.yml")
                              .read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((ROOT / "docker/grafana/provisioning/datasources/prometheus.yml")
                            .read_text())
    uid = source["datasources"][0]["uid"]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert all(p["datasource"]["uid"] == uid for p in panels)


def test_prometheus_scrapes_bridges_workers_and_ingest():
    config = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert {"jobpipe-bridge", "jobpipe-worker", "jobpipe-ingest",
            "jobpipe-scheduler"} <= set(jobs)
    assert METRIC.findall(json.dumps(config)) == [] or (
        set(METRIC.findall(json.dumps(config))) <= metrics.exported_names())
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    for job in jobs.values():
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in compose["services"], target

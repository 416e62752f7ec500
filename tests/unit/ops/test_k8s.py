"""deploy/k8s manifests, parsed: probes, resources, graceful stop, KEDA on lag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jobpipe import names
from jobpipe.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"


def _docs() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] == "Deployment"}


def _config_settings():
    configmap = next(d for d in _docs() if d["kind"] == "ConfigMap")
    path = K8S / "_rendered.toml"
    path.write_text(configmap["data"]["jobpipe.toml"])
    try:
        return load_settings(path, environ={})
    finally:
        path.unlink()


def test_every_manifest_parses_and_kustomization_lists_existing_files():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert {"jobpipe-bridge", "jobpipe-worker", "jobpipe-ingest",
            "jobpipe-scheduler"} == set(_deployments())
    # Opt-in: a scheduler refuses to start until the ConfigMap declares a schedule.
    assert ("scheduler.yaml" in kustomization["resources"]) == bool(
        _config_settings().schedules)


@pytest.mark.parametrize("name", ["jobpipe-bridge", "jobpipe-worker", "jobpipe-ingest",
                                  "jobpipe-scheduler"])
def test_deployment_has_probes_resources_and_runs_as_non_root(name):
    spec = _deployments()[name]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["readinessProbe"]["exec"]["command"] == ["jobpipe", "check"]
    assert container["livenessProbe"]
    requests = container["resources"]["requests"]
    assert requests["cpu"]
    assert requests["memory"]
    assert container["resources"]["limits"]["memory"]


def test_workers_get_longer_to_stop_than_their_shutdown_timeout():
    settings = _config_settings()
    for name, deployment in _deployments().items():
        grace_s = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        if name == "jobpipe-worker":
            assert grace_s > settings.worker.shutdown_timeout_s
        assert grace_s >= 30


def test_schedulers_serve_metrics_and_are_not_all_stopped_at_once():
    deployment = _deployments()["jobpipe-scheduler"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "scheduler"
    port = container["args"][container["args"].index("--metrics-port") + 1]
    assert deployment["spec"]["template"]["metadata"]["annotations"][
        "prometheus.io/port"] == port
    assert deployment["spec"]["replicas"] >= 2
    budgets = [d for d in _docs() if d["kind"] == "PodDisruptionBudget"
               and d["metadata"]["name"] == "jobpipe-scheduler"]
    assert budgets
    assert budgets[0]["spec"]["minAvailable"] >= 1


def test_workers_serve_merged_metrics_across_processes():
    (container,) = _deployments()["jobpipe-worker"]["spec"]["template"]["spec"]["containers"]
    assert "--metrics-port" in container["args"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")


def test_keda_scales_workers_on_the_workers_group_lag():
    settings = _config_settings()
    scaled = next(d for d in _docs() if d["kind"] == "ScaledObject")
    assert scaled["apiVersion"].startswith("keda.sh/")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "jobpipe-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == names.group_id(settings.namespace, "workers")
    assert int(trigger["metadata"]["lagThreshold"]) > 0
    auth = {d["metadata"]["name"] for d in _docs() if d["kind"] == "TriggerAuthentication"}
    assert trigger["authenticationRef"]["name"] in auth
    # more consumers than partitions would sit idle
    (container,) = _deployments()["jobpipe-worker"]["spec"]["template"]["spec"]["containers"]
    processes = int(container["args"][container["args"].index("--processes") + 1])
    partitions = min(q.partitions for q in settings.topology.queues.values())
    assert scaled["spec"]["maxReplicaCount"] * processes <= partitions
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_no_secret_is_applied_from_the_repository():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    for doc in _docs():
        if doc["kind"] == "ConfigMap":
            text = yaml.safe_dump(doc)
            assert "password" not in text.lower()

"""docker/compose.yml, checked without a Docker engine: schema, images, Kafka, Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker" / "compose.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _kafka(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items()
            if str(s.get("image", "")).startswith("apache/kafka:")}


def test_compose_file_matches_the_compose_specification_schema(compose):
    schema = json.loads(SCHEMA.read_text())
    errors = [f"{e.json_path}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(compose)]
    assert errors == []


def test_every_service_has_an_image_or_a_build(compose):
    for name, service in compose["services"].items():
        assert service.get("image") or service.get("build"), name
        if "build" in service:
            context = COMPOSE.parent / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), name


def test_every_mounted_file_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"


def test_kafka_is_three_kraft_brokers_with_replication_3_and_min_isr_2(compose):
    brokers = _kafka(compose)
    assert len(brokers) == 3
    ids = set()
    for name, broker in brokers.items():
        env = {k: str(v) for k, v in broker["environment"].items()}
        ids.add(env["KAFKA_NODE_ID"])
        assert "controller" in env["KAFKA_PROCESS_ROLES"]
        assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert broker["volumes"], f"{name} keeps its log on a volume"
    assert ids == {"1", "2", "3"}


def test_jobpipe_topics_are_created_with_replication_3_and_min_isr_2():
    import tomllib

    from jobpipe.settings import load_settings

    settings = load_settings(COMPOSE.parent / "jobpipe.toml", environ={})
    assert settings.kafka.replication_factor == 3
    assert settings.kafka.min_insync_replicas == 2
    assert tomllib.loads((COMPOSE.parent / "jobpipe.toml").read_text())["queues"]


def test_redis_runs_with_aof_and_noeviction(compose):
    command = compose["services"]["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--appendonly"] == "yes"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert "--requirepass" in flags


def test_pipeline_services_are_present_and_drain_gracefully(compose):
    services = compose["services"]
    bridges = [n for n, s in services.items() if s.get("command", [None])[0] == "bridge"]
    assert len(bridges) == 2
    assert services["worker"]["command"][0] == "worker"
    assert services["worker"]["deploy"]["replicas"] >= 1
    assert services["worker"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert services["ingest"]["command"] == ["ingest-server"]
    for name in [*bridges, "worker", "ingest"]:
        assert services[name]["stop_signal"] == "SIGTERM"
        grace_s = int(services[name]["stop_grace_period"].rstrip("s"))
        assert grace_s > 30, f"{name}: grace must exceed worker.shutdown_timeout_s"
        assert services[name]["healthcheck"]["test"] == ["CMD", "jobpipe", "check"]
    assert {"prometheus", "grafana"} <= set(services)


def test_schedulers_are_an_opt_in_profile_serving_metrics(compose):
    scheduler = compose["services"]["scheduler"]
    assert scheduler["command"][:1] == ["scheduler"]
    assert "--metrics-port" in scheduler["command"]
    assert scheduler["deploy"]["replicas"] >= 2
    # Without a [schedules.NAME] table a scheduler refuses to start: opt-in.
    assert scheduler["profiles"] == ["scheduler"]
    assert scheduler["healthcheck"]["test"] == ["CMD", "jobpipe", "check"]


def test_dockerfile_runs_as_non_root_and_execs_jobpipe():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert "-slim" in text
    assert "USER 10001" in text
    assert 'ENTRYPOINT ["jobpipe"]' in text

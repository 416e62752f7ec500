"""``jobpipe loadtest --kill``: steps in turn, targets of a step at once, and the
private stack they ask for; a bad option is one line, before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobpipe.cli import main
from jobpipe.errors import ConfigError
from loadtest.run_plan import RunPlan


def plan(kill: str | None, **options: Any) -> RunPlan:
    return RunPlan(run_dir="/tmp/x", rates=(100.0,), step_s=5, kill=kill, **options)


def test_targets_joined_by_plus_are_one_step_and_commas_separate_steps() -> None:
    both = plan("kafka-broker+redis-primary,worker")
    assert both.kill_steps == (("kafka-broker", "redis-primary"), ("worker",))
    assert both.kill_targets == ("kafka-broker", "redis-primary", "worker")
    assert both.private_stack
    assert plan("bridge,worker").kill_steps == (("bridge",), ("worker",))
    assert not plan("bridge,worker").private_stack
    assert plan(None).kill_steps == ()


@pytest.mark.parametrize(("kill", "options", "message"), [
    ("kafka-broker+zookeeper", {}, "--kill: 'zookeeper' is not one of"),
    ("kafka-broker+kafka-broker", {}, "names a target twice"),
    ("redis,redis-primary", {}, "cannot share a run"),
    ("worker", {"stack_redis_port": 17100, "stack_kafka_port": 19400},
     "--stack-ports: only a run that kills a service"),
    ("kafka-broker", {"stack_redis_port": 80, "stack_kafka_port": 19400},
     "--stack-ports: give REDIS:KAFKA"),
])
def test_a_bad_kill_plan_is_refused(kill: str, options: dict[str, Any],
                                    message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(kill, **options)


def test_the_private_stack_has_three_brokers_and_a_redis_cluster_on_the_given_ports(
        tmp_path: Path) -> None:
    from loadtest.service_choice import private_devstack

    stack = private_devstack(RunPlan(run_dir=str(tmp_path), rates=(100.0,), step_s=5,
                                  kill="kafka-broker+redis-primary", stack_redis_port=17100,
                                  stack_kafka_port=19400))
    assert stack.layout.brokers == 3
    assert stack.kafka_bootstrap == "127.0.0.1:19400,127.0.0.1:19402,127.0.0.1:19404"
    assert stack.redis_cluster.ports == list(range(17100, 17106))
    broker_only = private_devstack(RunPlan(run_dir=str(tmp_path), rates=(100.0,), step_s=5,
                                        kill="kafka-broker"))
    assert broker_only.layout.brokers == 3
    assert broker_only.redis_cluster is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--kill", "kafka-broker+zookeeper"], "--kill: 'zookeeper' is not one of bridge,"),
    (["--kill", "kafka-broker", "--stack-ports", "17100"], "--stack-ports: give REDIS:KAFKA"),
])
def test_the_cli_refuses_a_bad_kill_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        message: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["loadtest", "--rate", "10", "--duration", "1",
              "--report-dir", str(tmp_path / "report"), *argv])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("jobpipe: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "report").exists()  # refused before anything started


def test_the_cli_refuses_a_report_folder_holding_an_earlier_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    earlier = tmp_path / "report"
    (earlier / "ledger").mkdir(parents=True)
    with pytest.raises(SystemExit) as stopped:
        main(["loadtest", "--rate", "10", "--duration", "1", "--report-dir", str(earlier)])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("jobpipe: error: --report-dir ")
    assert "not empty" in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in earlier.iterdir()) == ["ledger"]  # nothing started

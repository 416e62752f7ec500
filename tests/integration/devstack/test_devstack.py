"""The dev stack against the real redis-server and the real Kafka jars.

Every test runs its own stack under its tmp dir on free ports, next to (never
touching) the default one, and leaves no process behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from jobpipe.devstack import DevStack, find_tool, free_port, free_port_block, require_tools
from jobpipe.devstack.processes import pid_alive
from jobpipe.errors import StackError

pytestmark = pytest.mark.integration
JOBPIPE = [sys.executable, "-m", "jobpipe"]


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        assert not pid_alive(pid), f"pid {pid} still runs"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    """A private stack (AOF fsync always) on free ports, stopped afterwards."""
    private = DevStack(tmp_path / "stack", redis_port=free_port(),
                       kafka_port=free_port_block(2), redis_appendfsync="always")
    yield private
    private.down()


def kafka_round_trip(bootstrap: str, topic: str) -> bytes:
    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "broker.address.family": "v4"})
    producer.produce(topic, b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g",
                         "auto.offset.reset": "earliest", "broker.address.family": "v4"})
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                return bytes(msg.value())
    finally:
        consumer.close()
    raise AssertionError("no message consumed")


def test_a_private_stack_starts_answers_and_up_twice_is_harmless(stack: DevStack) -> None:
    info = stack.up()
    assert set(info.started) == {"redis", "kafka-1"}
    assert info.kafka_start_s is not None
    assert info.kafka_start_s > 0
    client = redis.Redis.from_url(info.redis_url)
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert client.config_get("appendfsync")["appendfsync"] == "always"
    client.close()
    assert kafka_round_trip(info.kafka_bootstrap, "devstack-check") == b"hello"

    again = stack.up()
    assert again.started == ()
    assert (again.redis_pid, again.kafka_pids) == (info.redis_pid, info.kafka_pids)

    rows = {row.name: row for row in stack.status()}
    assert rows["redis"].pid == info.redis_pid
    assert rows["kafka-1"].alive
    assert rows["kafka-1"].rss_bytes is not None
    assert rows["kafka-1"].rss_bytes > 10 * 2**20

    assert set(stack.down()) == {"redis", "kafka-1"}
    assert_gone([info.redis_pid, *info.kafka_pids])
    assert stack.down() == []
    assert not any(row.alive for row in stack.status())


@pytest.mark.chaos
def test_kill_freeze_and_restart_helpers(stack: DevStack) -> None:
    info = stack.up()
    client = redis.Redis.from_url(info.redis_url)
    client.set("survives", "kill -9")
    assert stack.kill_redis()
    assert_gone([info.redis_pid])
    assert stack.start_redis()
    assert client.get("survives") == b"kill -9"  # appendfsync always: nothing lost
    client.close()

    old = stack.kafka_pid
    assert old is not None
    assert stack.freeze_kafka()
    assert _state(old) == "T"
    assert stack.thaw_kafka()
    assert _state(old) != "T"
    assert stack.kill_kafka(1)
    assert_gone([old])
    assert stack.start_kafka(1) is not None
    assert stack.kafka_pid not in (None, old)
    assert stack.stop_kafka(1)
    assert stack.kafka_pid is None


def test_the_cli_up_twice_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    root = tmp_path / "cli"
    ports = ["--redis-port", str(free_port()), "--kafka-port", str(free_port_block(2))]
    first = subprocess.run([*JOBPIPE, "dev", "up", "--root", str(root), *ports],
                           capture_output=True, text=True, check=False, timeout=300)
    try:
        assert first.returncode == 0, first.stderr
        assert "JOBPIPE_REDIS_URL=redis://127.0.0.1:" in first.stdout
        assert "JOBPIPE_KAFKA_BOOTSTRAP=127.0.0.1:" in first.stdout
        second = subprocess.run([*JOBPIPE, "dev", "up", "--root", str(root)],
                                capture_output=True, text=True, check=True, timeout=300)
        assert "already running" in second.stdout
        status = subprocess.run([*JOBPIPE, "dev", "status", "--root", str(root)],
                                capture_output=True, text=True, check=True)
        assert "kafka-1" in status.stdout
        assert "started in" in status.stdout
        stack = DevStack.load(root)
        pids = [stack.redis_pid, stack.kafka_pid]
        assert None not in pids
    finally:
        subprocess.run([*JOBPIPE, "dev", "down", "--root", str(root)], check=True,
                       timeout=120)
    assert_gone([p for p in pids if p is not None])
    after = subprocess.run([*JOBPIPE, "dev", "status", "--root", str(root)],
                           capture_output=True, text=True, check=False)
    assert after.returncode == 3
    assert "not running" in after.stdout


@pytest.mark.parametrize(("tool", "install"), [
    ("redis-server", "apt-get install -y redis-server"),
    ("java", "apt-get install -y openjdk-17-jre-headless"),
    ("mvn", "apt-get install -y maven"),
])
def test_a_missing_tool_is_one_line_naming_it_and_its_install_command(
        tmp_path: Path, tool: str, install: str) -> None:
    with pytest.raises(StackError) as caught:
        find_tool(tool, path=str(tmp_path))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tool} is not installed")
    assert message.endswith(install)
    assert require_tools([tool])[tool]  # the real machine has it


def test_up_without_the_tools_fails_before_starting_anything(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "s", redis_port=free_port(), kafka_port=free_port_block(2),
                     tool_path=str(tmp_path))
    with pytest.raises(StackError, match="redis-server is not installed"):
        stack.up()
    assert not any(row.alive for row in stack.status())


def test_the_cli_prints_the_missing_tool_on_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run([*JOBPIPE, "dev", "up", "--root", str(tmp_path / "s"),
                             "--redis-port", str(free_port())],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "jobpipe: error: redis-server is not installed (not on PATH); "
        "install it with: apt-get install -y redis-server"]


def test_a_port_taken_by_someone_else_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        stack = DevStack(tmp_path / "s", redis_port=taken, kafka_port=free_port_block(2))
        with pytest.raises(StackError, match=f"port {taken} is in use"):
            stack.up()
    stack.down()


def test_dev_up_docker_without_an_engine_says_so(tmp_path: Path) -> None:
    if find_tool_or_none("docker") is None:
        pytest.skip("no docker CLI here")
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    if probe.returncode == 0:
        pytest.skip("a Docker engine answers here")
    result = subprocess.run([*JOBPIPE, "dev", "up", "--docker"], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert "no Docker engine answers here" in result.stderr


def find_tool_or_none(name: str) -> str | None:
    try:
        return find_tool(name)
    except StackError:
        return None


@pytest.mark.slow
def test_three_brokers_replicate_and_survive_one_node_down(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "three", redis_port=free_port(),
                     kafka_port=free_port_block(6), brokers=3)
    try:
        info = stack.up()
        assert len(info.kafka_bootstrap.split(",")) == 3
        admin = AdminClient({"bootstrap.servers": info.kafka_bootstrap})
        for future in admin.create_topics([NewTopic("r3", 3, 3)]).values():
            future.result(30)
        deadline = time.monotonic() + 60
        while True:  # followers join the ISR shortly after the topic is created
            meta = admin.list_topics(timeout=10).topics.get("r3")  # not listed at first
            if meta is not None and all(len(p.isrs) == 3 for p in meta.partitions.values()):
                break
            assert time.monotonic() < deadline, "replicas never all in sync"
            time.sleep(0.2)
        stack.kill_kafka(2)
        producer = Producer({"bootstrap.servers": info.kafka_bootstrap,
                             "enable.idempotence": True, "message.timeout.ms": 60000})
        for i in range(100):
            producer.produce("r3", str(i).encode())
        assert producer.flush(60) == 0  # acks=all with min ISR 2 of 3
        stack.start_kafka(2)
    finally:
        stack.down()
    assert_gone([p for p in info.kafka_pids if p])

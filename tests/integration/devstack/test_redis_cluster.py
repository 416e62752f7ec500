"""``jobpipe dev up --redis-cluster 3`` against the real redis-server in cluster mode.

Each test forms a private cluster (3 primaries, 3 replicas) on a free port block
whose bus ports (+10000) are free too, and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from ingest.producer import Producer
from jobpipe.connections import async_redis_client, redis_client
from jobpipe.devstack import DevStack, free_port_block
from jobpipe.devstack.processes import pid_alive, poll_until
from jobpipe.devstack.redis_cluster import (
    BUS_PORT_OFFSET,
    CLUSTER_SLOTS,
    LocalRedisCluster,
    cluster_info,
    cluster_nodes,
    node_role,
    serves_every_slot,
)
from jobpipe.settings import RedisSettings, load_settings
from jobpipe.stats import StatsCollector
from jobpipe.stats_model import to_json
from loadtest.orchestrate import local_service_pids

pytestmark = pytest.mark.integration
JOBPIPE = [sys.executable, "-m", "jobpipe"]


def _jobpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*JOBPIPE, *args], capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture
def cluster_cli(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """A private stack root, a free cluster port block and a Kafka port; downed after."""
    root = tmp_path / "stack"
    base = free_port_block(6, shadow_offset=BUS_PORT_OFFSET)
    kafka = free_port_block(2)
    yield root, base, kafka
    _jobpipe("dev", "down", "--root", str(root))


def _up(root: Path, base: int, kafka: int) -> subprocess.CompletedProcess[str]:
    return _jobpipe("dev", "up", "--root", str(root), "--redis-cluster", "3",
                    "--redis-port", str(base), "--kafka-port", str(kafka))


def test_dev_up_forms_a_cluster_serving_every_slot_and_down_leaves_no_process(
        cluster_cli: tuple[Path, int, int]) -> None:
    root, base, kafka = cluster_cli
    result = _up(root, base, kafka)
    assert result.returncode == 0, result.stderr
    assert f"redis cluster  redis://127.0.0.1:{base}/0" in result.stdout
    assert f"JOBPIPE_REDIS_URL=redis://127.0.0.1:{base}/0\nJOBPIPE_REDIS_CLUSTER=true\n" \
        in result.stdout
    ports = list(range(base, base + 6))
    for port in ports:
        info = cluster_info(port)
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_assigned"] == str(CLUSTER_SLOTS)
        assert info["cluster_known_nodes"] == "6"
    roles = [node_role(port) for port in ports]
    assert sorted(map(str, roles)) == ["primary"] * 3 + ["replica"] * 3

    # The one place that builds clients gives a cluster client when redis.cluster is set.
    settings = load_settings(environ={"JOBPIPE_REDIS_URL": f"redis://127.0.0.1:{base}/0",
                                      "JOBPIPE_REDIS_CLUSTER": "true"})
    client = redis_client(settings.redis)
    assert isinstance(client, RedisCluster)
    try:
        # Keys on different slots, so on different primaries.
        for key in ("alpha", "beta", "gamma"):
            client.set(key, key.upper())
        written = {key: client.get(key) for key in ("alpha", "beta", "gamma")}
        assert written == {"alpha": b"ALPHA", "beta": b"BETA", "gamma": b"GAMMA"}
        owners = {client.get_node_from_key(key).port for key in ("alpha", "beta", "gamma")}
        assert len(owners) > 1
    finally:
        client.close()
    for port in ports:
        node = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        config = {**node.config_get("appendonly"), **node.config_get("maxmemory-policy")}
        node.close()
        assert config == {"appendonly": "yes", "maxmemory-policy": "noeviction"}

    assert asyncio.run(_async_round_trip(settings.redis)) == b"via asyncio"
    assert _stats_ready_after_enqueue(base, kafka) == 11

    # The load test measures the CPU of every node, of a stack it owns and of one it found.
    owned = DevStack.load(root).redis_pids
    found = local_service_pids(settings)
    assert sorted(owned) == sorted(n for n in found if n.startswith("redis")) \
        == sorted(f"redis-{port}" for port in ports)
    for name, pid in owned.items():
        assert found[name] == pid
        assert name.removeprefix("redis-") in Path(f"/proc/{pid}/cmdline").read_text()


    status = _jobpipe("dev", "status", "--root", str(root))
    assert status.returncode == 0, status.stdout + status.stderr
    node_lines = [line for line in status.stdout.splitlines() if line.startswith("redis-")]
    assert len(node_lines) == 6
    assert sum(" primary " in line for line in node_lines) == 3
    assert sum(" replica " in line for line in node_lines) == 3

    again = _up(root, base, kafka)  # idempotent: nothing new, the same cluster
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout

    pids = [int(p) for p in result.stdout.split("(pids ")[1].split(")")[0].split(", ")]
    down = _jobpipe("dev", "down", "--root", str(root))
    assert down.returncode == 0, down.stderr
    assert all(f"redis-{port}" in down.stdout for port in ports)
    assert poll_until(lambda: not any(pid_alive(pid) for pid in pids), 30, 0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A private cluster without Kafka (what the fail-over test needs), stopped after."""
    local = LocalRedisCluster(tmp_path / "cluster",
                              free_port_block(6, shadow_offset=BUS_PORT_OFFSET))
    yield local
    for node in local.nodes:
        node.stop()


def test_kill_9_of_a_primary_promotes_its_replica_and_every_slot_is_served_again(
        cluster: LocalRedisCluster) -> None:
    cluster.start("redis-server", "redis-cli")
    nodes = cluster_nodes(cluster.base_port)
    victim = next(node for node in nodes if node.role == "primary")
    replica = next(node for node in nodes if node.primary_id == victim.node_id)
    client = RedisCluster(host="127.0.0.1", port=cluster.base_port)
    try:
        key = next(k for k in (f"k{i}" for i in range(1000))
                   if client.get_node_from_key(k).port == victim.port)
        client.set(key, b"before")
        client.execute_command("WAIT", 1, 5000, target_nodes=client.get_node_from_key(key))

        assert cluster.kill(victim.port)
        survivor = replica.port
        assert poll_until(lambda: node_role(survivor) == "primary", 60, 0.1)
        assert poll_until(lambda: serves_every_slot(survivor), 60, 0.1)
        # The cluster client follows the new owner of the slot (MOVED, topology refresh).
        assert poll_until(lambda: _reads(client, key) == b"before", 60, 0.2)
        assert client.get_node_from_key(key).port == survivor
    finally:
        client.close()


def _stats_ready_after_enqueue(base: int, kafka: int) -> int:
    """Enqueue 11 jobs with the producer; what ``jobpipe stats`` counts as ready."""
    settings = load_settings(environ={"JOBPIPE_REDIS_URL": f"redis://127.0.0.1:{base}/0",
                                      "JOBPIPE_REDIS_CLUSTER": "true",
                                      "JOBPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}"})
    producer = Producer(settings)
    try:
        producer.enqueue("default", "t.one", [0])
        producer.enqueue_many("default", "t.many", [[i] for i in range(10)])
    finally:
        producer.close()
    collector = StatsCollector(settings, ["default"])
    try:
        ready = to_json(collector.snapshot(), {})["queues"]["default"]["redis"]["ready"]
    finally:
        collector.close()
    return int(ready)


async def _async_round_trip(settings: RedisSettings) -> bytes | None:
    client = async_redis_client(settings)
    assert isinstance(client, AsyncRedisCluster)
    try:
        await client.set("async-key", b"via asyncio")
        value = await client.get("async-key")
    finally:
        await client.aclose()
    return value if isinstance(value, bytes) else None


def _reads(client: RedisCluster, key: str) -> bytes | None:
    try:
        value = client.get(key)
    except redis.RedisError:  # the slot has no owner yet while the cluster settles
        return None
    return value if isinstance(value, bytes) else None

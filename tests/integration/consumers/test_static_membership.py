"""Static membership, the default, against real Kafka: worker processes name
themselves by a slot claimed on this host (consumers.member_name).

- A worker killed -9 and started again claims the dead one's name and takes its
  partitions straight back: the coordinator never rebalances, so the other
  worker's partitions never move, and nobody waits for the dead one's session.
- Two workers that claim the same name (two "hosts" of one hostname, each with
  its own /tmp: here two TMPDIRs) fence one another; the one fenced says so in
  one line and goes on as a dynamic member, and every job runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient, ConsumerGroupDescription

from jobpipe import names
from jobpipe.connections import kafka_admin_config
from jobpipe.envelope import Job, encode
from jobpipe.settings import Settings
from tests.conftest import GROUP_PROTOCOL
from tests.integration.consumers.helpers import (
    make_job,
    produce_jobs,
    setup_topics,
    start_worker,
    wait_for,
)
from tests.integration.consumers_ops.conftest import produce

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(GROUP_PROTOCOL == "consumer", reason=(
        "KIP-848 keeps a crashed static member's name until its session lapses "
        "(docs/reliability.md); these tests are about the classic protocol's")),
]
SETTLES_S = 120.0  # joins and rebalances on a loaded box
# The session the killed worker's membership would need to lapse: far longer than
# any restart here, so that only a rejoin under the same name can end the wait.
LONG_SESSION = {"JOBPIPE_KAFKA_CONSUMER": '{"session.timeout.ms" = "180000"}'}
FENCED_LINE = "uses the static member name"
QUEUES = {"default": {"partitions": 4, "retry_tiers_s": [1, 2]}}  # as start_worker's file


@pytest.fixture
def prefix(namespace: str, services, monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"{namespace}:rec"
    monkeypatch.setenv("REC_PREFIX", value)
    monkeypatch.setenv("REC_REDIS_URL", services.redis_url)
    return value


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; stopped (SIGTERM, then kill) afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def describe(settings: Settings) -> ConsumerGroupDescription | None:
    admin = AdminClient(kafka_admin_config(settings.kafka))
    group = names.group_id(settings.namespace, "workers")
    try:
        return admin.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException:  # no coordinator yet: ask again
        return None


def holdings(desc: ConsumerGroupDescription | None) -> dict[str, tuple[str | None, set[int]]]:
    """member id -> its group.instance.id and partitions."""
    if desc is None:
        return {}
    return {m.member_id: (m.group_instance_id,
                          {tp.partition for tp in m.assignment.topic_partitions})
            for m in desc.members}


def one_job_per_partition(settings: Settings, partitions: int) -> list[Job]:
    """Produce a ``record`` job to each partition of queue ``default``."""
    topic = names.main_topic(settings.namespace, "default")
    jobs = [make_job("default", "record", {}) for _ in range(partitions)]
    for partition, job in enumerate(jobs):
        produce(settings, topic, [(None, encode(job))], partition=partition)
    return jobs


def test_a_worker_killed_9_and_restarted_takes_its_partitions_straight_back(
        make_settings, redis_client, kafka_cleanup, tmp_path: Path, prefix: str,
        processes: list[subprocess.Popen[bytes]]) -> None:
    settings = make_settings(queues=QUEUES)
    setup_topics(settings)
    processes += [start_worker(settings, tmp_path, prefix, env=LONG_SESSION) for _ in range(2)]
    before: dict[str, tuple[str | None, set[int]]] = {}

    def both_hold_two() -> bool:
        before.clear()
        before.update(holdings(describe(settings)))
        return sorted(len(parts) for _, parts in before.values()) == [2, 2]

    wait_for(both_hold_two, SETTLES_S)
    names_held = sorted(str(name) for name, _ in before.values())
    host = socket.gethostname()
    assert names_held == [f"{host}-0", f"{host}-1"]  # each claimed a name of its own
    killed = processes[0]
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    processes.append(start_worker(settings, tmp_path, prefix, env=LONG_SESSION))

    def back() -> bool:
        desc = describe(settings)
        if desc is None:
            return False
        # Until the restarted worker holds the partitions, nothing may move: a
        # rebalance (a dynamic rejoin) would wait here for the dead one's session.
        assert desc.state == ConsumerGroupState.STABLE, desc.state
        now = holdings(desc)
        assert sorted(now.values(), key=str) == sorted(before.values(), key=str)
        # The same names hold the same partitions; one of them under a new member
        # id: the restarted worker's, under the name the killed one had.
        return now.keys() != before.keys()

    wait_for(back, SETTLES_S)
    jobs = one_job_per_partition(settings, 4)  # two are the restarted worker's to run
    wait_for(lambda: redis_client.scard(f"{prefix}:done") == len(jobs), SETTLES_S)
    assert {m.decode() for m in redis_client.smembers(f"{prefix}:done")} == {j.id for j in jobs}


def test_two_workers_claiming_one_name_both_run_jobs_and_the_fenced_one_says_so(
        make_settings, redis_client, kafka_cleanup, tmp_path: Path, prefix: str,
        processes: list[subprocess.Popen[bytes]]) -> None:
    settings = make_settings(queues=QUEUES)
    setup_topics(settings)
    # The fenced worker is still running ``held`` (and can commit nothing more):
    # whoever gets its partition next runs it again.
    held = make_job("default", "record", {"hold": True})
    jobs = [held] + [make_job("default", "record", {"sleep_s": 0.002}) for _ in range(2000)]
    produce_jobs(settings, jobs)
    logs, hosts = [], []
    for host in ("host-a", "host-b"):  # one hostname, two /tmp: the same claimed name
        (tmp_path / host).mkdir()
        hosts.append({"TMPDIR": str(tmp_path / host)})
        logs.append(tmp_path / f"{host}.log")
    with logs[0].open("wb") as log_a:
        processes.append(start_worker(settings, tmp_path, prefix, concurrency=8,
                                      env=hosts[0], stderr=log_a))
    wait_for(lambda: redis_client.sismember(f"{prefix}:started", held.id)
               and redis_client.scard(f"{prefix}:done") >= 300, SETTLES_S)
    with logs[1].open("wb") as log_b:  # joins under the name: the first one is fenced
        processes.append(start_worker(settings, tmp_path, prefix, concurrency=8,
                                      env=hosts[1], stderr=log_b))

    def both_hold_partitions() -> bool:
        members = holdings(describe(settings))
        return (len(members) == 2 and all(parts for _, parts in members.values())
                and sorted(name is None for name, _ in members.values()) == [False, True])

    wait_for(both_hold_partitions, SETTLES_S)  # one static, one fell back to dynamic
    # Re-delivered while the fenced worker still runs it: it could not commit past it.
    wait_for(lambda: int(redis_client.hget(f"{prefix}:starts", held.id) or 0) >= 2, SETTLES_S)
    redis_client.set(f"{prefix}:release", 1)
    wait_for(lambda: redis_client.scard(f"{prefix}:done") == len(jobs), SETTLES_S)
    more = one_job_per_partition(settings, 4)  # each holds some partitions: both run jobs
    wait_for(lambda: redis_client.scard(f"{prefix}:done") == len(jobs) + len(more), SETTLES_S)
    assert all(proc.poll() is None for proc in processes)  # neither died
    done = {m.decode() for m in redis_client.smembers(f"{prefix}:done")}
    assert done == {j.id for j in jobs + more}
    runs = {k.decode(): int(v) for k, v in redis_client.hgetall(f"{prefix}:runs").items()}
    print(f"fenced: {len(runs)} ids executed, {sum(runs.values()) - len(runs)} more than once")
    assert runs[held.id] >= 2
    warnings = [line for log in logs for line in log.read_text().splitlines()
                if FENCED_LINE in line]
    assert len(warnings) == 1, warnings
    assert f"'{socket.gethostname()}-0'" in warnings[0]
    assert "worker.instance_id" in warnings[0]
    assert "worker.membership" in warnings[0]

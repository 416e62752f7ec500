"""Least-privilege bridge and worker users (rules from ``bridge.acl`` and
``consumers.acl``) on a real Redis: with a producer's user they run every kind
of job of their queues end to end (priorities, delayed, fair tenants, rate
limits, idempotency markers), and each is refused ``FLUSHALL``, ``KEYS``, the
keys of a queue it does not serve and the other stage's keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bridge import Bridge
from bridge.acl import bridge_acl_rules
from consumers import App, JobContext, Worker
from consumers.acl import worker_acl_rules
from ingest import Producer
from ingest.acl import producer_acl_rules
from jobpipe import names
from jobpipe.admin import apply_topics
from jobpipe.redact import redact_url
from jobpipe.settings import Settings, load_settings
from tests.integration.bridge.procs import write_config
from tests.integration.ops.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.integration

PASSWORD = "stage-Pa55"
ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 120
RECORDING_APP = "tests.integration.consumers.recording_app"
QUEUES = {"default": {"partitions": 2, "shards": 2, "priorities": [2, 1],
                      "retry_tiers_s": [1], "rate_limit_per_s": 10_000},
          "fair": {"partitions": 1, "shards": 1, "fair": True,
                   "tenant_rate_limit_per_s": 10_000},
          "other": {"partitions": 1, "shards": 1}}
SERVED = ["default", "fair"]


@pytest.fixture
def users(acl_redis_port, services, namespace) -> Iterator[Callable[..., Settings]]:
    """``users(name, rules, require_safe)``: settings of a new user with ``rules``."""
    admin_url = f"redis://admin:{ADMIN_PASSWORD}@127.0.0.1:{acl_redis_port}/0"
    admin = redis.Redis.from_url(admin_url)
    made: list[str] = []

    def make(name: str, rules: list[str] | None = None, require_safe: bool = True) -> Settings:
        url = admin_url
        if rules is not None:
            admin.execute_command("ACL", "SETUSER", name, "reset", *rules, "on", f">{PASSWORD}")
            made.append(name)
            url = f"redis://{name}:{PASSWORD}@127.0.0.1:{acl_redis_port}/0"
        return load_settings(None, environ={}, overrides={
            "namespace": namespace, "redis": {"url": url, "require_safe": require_safe},
            "kafka": {"bootstrap": services.kafka_bootstrap}, "queues": QUEUES})

    admin.execute_command("ACL", "LOG", "RESET")
    yield make
    for name in made:
        admin.execute_command("ACL", "DELUSER", name)
    for key in admin.scan_iter(match=f"{namespace}:*", count=1000):
        admin.delete(key)
    admin.close()


def _denied(settings: Settings) -> list[str]:
    """What Redis refused since the test began (``ACL LOG``): command and key."""
    admin = redis.Redis.from_url(settings.redis.url)
    entries = admin.acl_log()
    admin.close()
    return [f"{e['username']}: {e['reason']} {e['object']}" for e in entries]


def _refused(client: redis.Redis, *commands: Callable[[], Any]) -> None:
    for command in commands:
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()


def test_bridge_and_worker_users_run_every_kind_of_job_of_their_queues(users, kafka_cleanup):
    admin = users("admin")
    ns = admin.namespace
    producer = users("jp-producer", producer_acl_rules(ns, admin.topology.select(SERVED)),
                     require_safe=False)
    bridge = users("jp-bridge", bridge_acl_rules(ns, admin.topology.select(SERVED)))
    worker = users("jp-worker", worker_acl_rules(ns, admin.topology.select(SERVED)))
    apply_topics(admin)
    with Producer(producer) as p:
        ids = p.enqueue_many("default", "work", [{"i": i} for i in range(20)])
        ids.append(p.enqueue("default", "work", {}, priority=1))
        ids.append(p.enqueue("default", "work", {}, delay_s=0.2))
        due_at = time.monotonic() + 0.2
        ids.append(p.enqueue("default", "work", {}, idempotency_key="once"))
        ids += p.enqueue_many("fair", "work", [{}] * 5, tenant="acme")
    done: set[str] = set()
    app = App("acl")

    @app.task
    async def work(ctx: JobContext, args: Any) -> None:
        done.add(ctx.job_id)

    # run_until_idle leaves delayed jobs that are not yet due: let this one come due.
    time.sleep(max(0.0, due_at - time.monotonic()))
    assert Bridge(bridge, queues=SERVED).run_until_idle(60), _denied(admin)
    assert Worker(worker, app, queues=SERVED).run_until_idle(60), _denied(admin)
    assert done == set(ids)
    assert not [d for d in _denied(admin) if not d.startswith("jp-producer")]
    assert redis.Redis.from_url(admin.redis.url).exists(names.done_key(ns, "default", "once"))

    client = redis.Redis.from_url(bridge.redis.url)
    other = names.ready_key(ns, "other", 0)
    _refused(client, client.flushall, lambda: client.keys("*"),
             lambda: client.rpop(other), lambda: client.lpush(other, b"x"),
             lambda: client.get(names.done_key(ns, "default", "k")),
             # its state script reads and writes records (HMGET/HSET): only its queues'
             lambda: client.hmget(names.job_states_key(ns, "other", "j"), ["j"]))
    client.close()

    client = redis.Redis.from_url(worker.redis.url)
    _refused(client, client.flushall, lambda: client.keys("*"),
             lambda: client.rpop(other), lambda: client.set(names.done_key(ns, "other", "k"), 1),
             lambda: client.lrange(names.inflight_index_key(ns, "default"), 0, -1),
             lambda: client.zrange(names.bridges_key(ns), 0, -1),
             lambda: client.sadd(names.paused_tenants_key(ns, "default"), "t"))
    client.close()


def _run_stage(settings: Settings, tmp_path: Path, *command: str) -> tuple[int, str]:
    """``python -m jobpipe COMMAND`` as the user of ``settings``; its exit code and
    stderr once it stops by itself (``DEADLINE_S`` at most: it must not retry)."""
    config = write_config(tmp_path / "jobpipe.toml", QUEUES)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBPIPE_")},
           "PYTHONPATH": str(ROOT), "JOBPIPE_CONFIG": str(config),
           "JOBPIPE_NAMESPACE": settings.namespace, "JOBPIPE_REDIS_URL": settings.redis.url,
           "JOBPIPE_KAFKA_BOOTSTRAP": settings.kafka.bootstrap}
    proc = subprocess.Popen([sys.executable, "-m", "jobpipe", *command], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its children share its group
    try:
        _, stderr = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the stage and any children it forked
        _, stderr = proc.communicate()
        pytest.fail(f"still running after {DEADLINE_S} s; it must stop, not retry:\n{stderr}")
    return proc.returncode, stderr


def _one_refusal_line(code: int, stderr: str, settings: Settings, command: str) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert "retrying" not in stderr
    assert "starting it again" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("jobpipe: error: redis.url: the Redis user of "
                           f"{redact_url(settings.redis.url)} may not run"), stderr
    assert f"'{command}'" in last, stderr


# Each user has every rule its stage needs but one command that stage first sends
# once it runs (not at start): the bridge's idle wait, the worker's pause-flag read
# or its heartbeat.
@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_bridge_refused_a_command_stops_with_one_line(users, tmp_path, processes):
    admin = users("admin")
    rules = [*bridge_acl_rules(admin.namespace, admin.topology.select(SERVED)), "-bzpopmin"]
    bridge = users("jp-bridge", rules)
    code, stderr = _run_stage(bridge, tmp_path, "bridge", "--queues", ",".join(SERVED),
                              "--processes", processes)
    _one_refusal_line(code, stderr, bridge, "bzpopmin")


@pytest.mark.parametrize(("refused", "processes"),
                         [("smembers", "1"), ("smembers", "2"), ("zadd", "1")])
def test_a_worker_refused_a_command_stops_with_one_line(users, tmp_path, refused, processes):
    admin = users("admin")
    apply_topics(admin)
    rules = [*worker_acl_rules(admin.namespace, admin.topology.select(SERVED)), f"-{refused}"]
    worker = users("jp-worker", rules)
    code, stderr = _run_stage(worker, tmp_path, "worker", RECORDING_APP,
                              "--queues", ",".join(SERVED), "--processes", processes)
    _one_refusal_line(code, stderr, worker, refused)

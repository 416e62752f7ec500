"""Least-privilege bridge and worker users (rules from ``bridge.acl`` and
``consumers.acl``) on a real Redis: with a producer's user they run every kind
of job of their queues end to end (priorities, delayed, fair tenants, rate
limits, idempotency markers), and each is refused ``FLUSHALL``, ``KEYS``, the
keys of a queue it does not serve and the other stage's keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.integration

PASSWORD = "stage-Pa55"
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
             # its state script reads and writes records (GET/SET): only its queues'
             lambda: client.get(names.job_status_key(ns, "other", "j")))
    client.close()

    client = redis.Redis.from_url(worker.redis.url)
    _refused(client, client.flushall, lambda: client.keys("*"),
             lambda: client.rpop(other), lambda: client.set(names.done_key(ns, "other", "k"), 1),
             lambda: client.lrange(names.inflight_index_key(ns, "default"), 0, -1),
             lambda: client.zrange(names.bridges_key(ns), 0, -1),
             lambda: client.sadd(names.paused_tenants_key(ns, "default"), "t"))
    client.close()

"""A Redis with an ACL user (default user off): the pipeline works with the
user's credentials in ``redis.url`` and fails with one clear line without them."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer

from ingest.http import create_app
from jobpipe.admin import apply_topics
from jobpipe.connections import check_redis_safety, redis_client
from jobpipe.errors import ConfigError
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.conftest import ADMIN_PASSWORD
from tests.integration.ops.kafka_read import read_all

pytestmark = pytest.mark.integration

def _settings(services, namespace: str, url: str) -> Settings:
    return load_settings(None, environ={}, overrides={
        "namespace": namespace,
        "redis": {"url": url},
        "kafka": {"bootstrap": services.kafka_bootstrap},
        "queues": {"default": {"partitions": 2, "shards": 2, "retry_tiers_s": [1]}},
    })


def test_jobs_flow_through_ingest_and_bridge_with_the_acl_user(
        acl_redis_port, services, namespace, kafka_cleanup):
    from bridge import Bridge
    from ingest import Producer

    settings = _settings(services, namespace,
                         f"redis://admin:{ADMIN_PASSWORD}@127.0.0.1:{acl_redis_port}/0")
    client = redis_client(settings.redis)
    assert check_redis_safety(client, settings.redis) == []
    client.close()
    apply_topics(settings)
    with Producer(settings) as producer:
        ids = set(producer.enqueue_many("default", "t", [{"i": i} for i in range(50)]))
    assert Bridge(settings).run_until_idle(60)
    jobs = read_all(settings.kafka, f"{namespace}.default", expect=50)
    assert {j.id for j in jobs} == ids


@pytest.mark.parametrize("credentials", ["", "admin:wrong@", f"nobody:{ADMIN_PASSWORD}@"])
def test_without_the_right_credentials_every_stage_says_so_in_one_line(
        acl_redis_port, services, namespace, credentials):
    from bridge import Bridge
    from ingest import Producer

    settings = _settings(services, namespace,
                         f"redis://{credentials}127.0.0.1:{acl_redis_port}/0")
    with pytest.raises(ConfigError, match="refused the credentials") as caught:
        check_redis_safety(redis_client(settings.redis), settings.redis)
    message = str(caught.value)
    assert "\n" not in message
    assert ADMIN_PASSWORD not in message
    with pytest.raises(ConfigError, match="refused the credentials"):
        Producer(settings)
    with pytest.raises(ConfigError, match="refused the credentials"):
        Bridge(settings).run_until_idle(10)


@pytest.mark.parametrize("spooled", [False, True])
async def test_a_password_rotated_after_the_start_is_one_clear_line_not_an_outage(
        acl_redis_port, services, namespace, tmp_path, spooled):
    """Producers that started with good credentials and then meet a refusal say so
    at once (sync and asyncio), instead of retrying to the deadline or spooling."""
    from ingest import AsyncProducer, Producer

    user = f"rotated-{namespace}"
    admin = redis.Redis(port=acl_redis_port, username="admin", password=ADMIN_PASSWORD)
    admin.acl_setuser(user, enabled=True, passwords=["+before"], keys=["*"], channels=["*"],
                      commands=["+@all"])
    settings = _settings(services, namespace,
                         f"redis://{user}:before@127.0.0.1:{acl_redis_port}/0")
    settings = replace(settings, ingest=replace(
        settings.ingest, deadline_s=600.0,  # a refusal read as "down" would wait this long
        spool_path=str(tmp_path / "spool") if spooled else None))
    try:
        sync = Producer(settings)
        aio = await AsyncProducer(settings).start()
        sync.enqueue("default", "t", {})
        await aio.enqueue("default", "t", {})
        admin.acl_setuser(user, reset_passwords=True, passwords=["+after"])
        admin.client_kill_filter(user=user)  # its pooled connections log in again
        with pytest.raises(ConfigError, match="refused the credentials") as caught:
            sync.enqueue("default", "t", {})
        assert "before" not in str(caught.value)
        with pytest.raises(ConfigError, match="refused the credentials"):
            await aio.enqueue("default", "t", {})
        server = TestServer(create_app(settings, aio), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{server.port}") as http, \
                    http.post("/v1/queues/default/jobs", json={"task": "t"}) as resp:
                assert resp.status == 500
                assert "refused the credentials" in (await resp.json())["error"]
        finally:
            await server.close()
        sync.close()
        await aio.close()
    finally:
        admin.acl_deluser(user)
        admin.close()

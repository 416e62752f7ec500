"""A Redis with an ACL user (default user off): the pipeline works with the
user's credentials in ``redis.url`` and fails with one clear line without them."""

from __future__ import annotations

import pytest

from jobpipe.admin import apply_topics
from jobpipe.connections import check_redis_safety, redis_client
from jobpipe.errors import ConfigError
from jobpipe.settings import Settings, load_settings
from tests.integration.ops.kafka_read import read_all
from tests.private_stack import started

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def acl_redis_port(tmp_path_factory):
    from jobpipe.devstack import DevStack, free_port, free_port_block

    stack = DevStack(tmp_path_factory.mktemp("acl"), redis_port=free_port(),
                     kafka_port=free_port_block(2),
                     redis_extra_config=["user default off",
                                         f"user jp on >{PASSWORD} ~* &* +@all"])
    with started(stack, "redis-server", redis_only=True):
        yield stack.redis_config.port


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
                         f"redis://jp:{PASSWORD}@127.0.0.1:{acl_redis_port}/0")
    client = redis_client(settings.redis)
    assert check_redis_safety(client, settings.redis) == []
    client.close()
    apply_topics(settings)
    with Producer(settings) as producer:
        ids = set(producer.enqueue_many("default", "t", [{"i": i} for i in range(50)]))
    assert Bridge(settings).run_until_idle(60)
    jobs = read_all(settings.kafka, f"{namespace}.default", expect=50)
    assert {j.id for j in jobs} == ids


@pytest.mark.parametrize("credentials", ["", "jp:wrong@", f"nobody:{PASSWORD}@"])
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
    assert PASSWORD not in message
    with pytest.raises(ConfigError, match="refused the credentials"):
        Producer(settings)
    with pytest.raises(ConfigError, match="refused the credentials"):
        Bridge(settings).run_until_idle(10)

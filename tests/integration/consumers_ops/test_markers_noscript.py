"""Done markers of several queues in one round trip, on a Redis that lost its
scripts (SCRIPT FLUSH, as after a restart or a fail-over): every marker is written."""

from __future__ import annotations

import pytest

from consumers.idempotency import DoneMarkers
from jobpipe.envelope import Job
from jobpipe.topology import QueueSpec
from tests.redis_modes import async_redis_client_for

pytestmark = pytest.mark.integration


async def test_markers_of_several_queues_after_a_script_flush_are_all_written(
        redis_url, redis_mode, namespace, redis_client):
    client = async_redis_client_for(redis_url, redis_mode)
    markers = DoneMarkers(client, namespace)
    a, b = QueueSpec("a", idempotency_ttl_s=600), QueueSpec("b", idempotency_ttl_s=600)
    k1, k2, k3, k4 = (Job(id=f"k{i}", queue="a", task="t") for i in range(1, 5))
    try:
        await markers.mark([(a, [k1]), (b, [k2])])  # the script is loaded
        redis_client.script_flush()  # the next pipeline's EVALSHAs meet NOSCRIPT
        await markers.mark([(a, [k3]), (b, [k4])])
        assert await markers.seen(a, [k1, k3, k2]) == [True, True, False]
        assert await markers.seen(b, [k2, k4, k1]) == [True, True, False]
    finally:
        await client.aclose()

"""Done markers: jobs keyed by their id share a hash per 256 ms of ids, each with
the queue's TTL; an explicit idempotency key keeps a key of its own. Checked on
real Redis, single and Cluster."""

from __future__ import annotations

import pytest

from consumers.idempotency import DoneMarkers
from jobpipe import names
from jobpipe.envelope import Job
from jobpipe.ids import new_job_ids
from jobpipe.topology import QueueSpec
from tests.redis_modes import BOTH, async_redis_client_for

pytestmark = [pytest.mark.integration, BOTH]


async def test_a_large_mixed_batch_is_marked_and_seen_by_id_hash_and_explicit_key(
        redis_url, redis_mode, namespace, redis_client):
    client = async_redis_client_for(redis_url, redis_mode)
    markers = DoneMarkers(client, namespace)
    spec = QueueSpec("q", idempotency_ttl_s=600)
    # More ids than one HSET takes, plus ids of another writer (any UUID) and
    # jobs with explicit keys, one of them sharing its key with an unmarked job.
    by_id = [Job(id=i, queue="q", task="t") for i in new_job_ids(4500)]
    foreign = [Job(id=f"{n:08x}-0000-4000-8000-000000000000", queue="q", task="t")
               for n in range(3)]
    explicit = [Job(id=i, queue="q", task="t", idem=f"pay-{n}")
                for n, i in enumerate(new_job_ids(3))]
    twin = Job(id=new_job_ids(1)[0], queue="q", task="t", idem="pay-0")
    unmarked = [Job(id=i, queue="q", task="t") for i in new_job_ids(5)]
    try:
        await markers.mark([(spec, [*by_id, *foreign, *explicit])])
        batch = [*unmarked[:2], *by_id, twin, *foreign, *explicit, *unmarked[2:]]
        assert await markers.seen(spec, batch) == [
            False, False, *[True] * (len(by_id) + 1 + len(foreign) + len(explicit)),
            False, False, False]
    finally:
        await client.aclose()
    ns = namespace
    hashes = {names.done_ids_key(ns, "q", job.id) for job in by_id}
    assert len(hashes) < 10  # ids made together share a hash
    assert sum(redis_client.hlen(key) for key in hashes) == len(by_id)
    assert all(0 < redis_client.ttl(key) <= 600 for key in hashes)
    for job in foreign:
        assert redis_client.hexists(names.done_ids_key(ns, "q", job.id), job.id)
    for job in explicit:
        key = names.done_key(ns, "q", job.idem or "")
        assert 0 < redis_client.ttl(key) <= 600
        assert not redis_client.hexists(names.done_ids_key(ns, "q", job.id), job.id)


async def test_a_queue_without_markers_writes_and_reads_none(redis_url, redis_mode, namespace,
                                                             redis_client):
    client = async_redis_client_for(redis_url, redis_mode)
    markers = DoneMarkers(client, namespace)
    spec = QueueSpec("off", idempotency_ttl_s=0)
    jobs = [Job(id=i, queue="off", task="t") for i in new_job_ids(3)]
    try:
        await markers.mark([(spec, jobs)])
        assert await markers.seen(spec, jobs) == [False] * 3
    finally:
        await client.aclose()
    assert not any(redis_client.exists(names.done_ids_key(namespace, "off", job.id))
                   for job in jobs)

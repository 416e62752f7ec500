"""Where a job lands in Redis, and what routing reads of it (jobpipe.routing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobpipe import names
from jobpipe.envelope import Job, encode, peek_key
from jobpipe.errors import EnvelopeError
from jobpipe.routing import DEFAULT_TENANT, Routes, priority_level, read_route
from jobpipe.topology import QueueSpec, shard_for


def _raw(priority: int) -> bytes:
    return encode(Job(id="x", queue="q", task="t", priority=priority))


def test_priority_level_reads_the_job_priority_and_clamps_to_the_queue_levels():
    spec = QueueSpec("q", priorities=(3, 2, 1))
    assert priority_level(_raw(0), spec) == 0
    assert priority_level(_raw(2), spec) == 2
    assert priority_level(_raw(7), spec) == 2


@pytest.mark.parametrize(("raw", "reason"), [(b"{nope", "invalid_json"),
                                             (b"[1]", "not_an_object"),
                                             (b'{"priority": "high"}', "wrong_type"),
                                             (b'{"priority": -1}', "wrong_type")])
def test_priority_level_refuses_what_is_not_a_job(raw, reason):
    with pytest.raises(EnvelopeError) as caught:
        priority_level(raw, QueueSpec("q"))
    assert caught.value.reason == reason


def test_read_route_reads_the_tenant_and_ignores_one_that_is_not_a_string():
    spec = QueueSpec("q")
    assert read_route(encode(Job(id="x", queue="q", task="t", tenant="acme")), spec) == (0, "acme")
    assert read_route(b'{"priority": 0, "tenant": 7}', spec) == (0, None)


def test_a_fair_job_goes_to_its_tenant_list_or_the_default_one():
    routes = Routes.of("ns", QueueSpec("q", fair=True))
    acme = encode(Job(id="1", queue="q", task="t", tenant="acme"))
    nobody = encode(Job(id="2", queue="q", task="t"))
    assert routes.of_raw(acme, 0) == (names.tenant_ready_key("ns", "q", "acme"), "acme")
    assert routes.of_raw(nobody, 0) == (names.tenant_ready_key("ns", "q", DEFAULT_TENANT),
                                        DEFAULT_TENANT)
    assert routes.of_raw(acme, 0, tenant="zed")[1] == "zed"
    assert routes.tenant_list(None) == names.tenant_ready_key("ns", "q", DEFAULT_TENANT)


def test_a_keyed_job_keeps_its_shard_and_an_unkeyed_one_follows_the_counter():
    routes = Routes.of("ns", QueueSpec("q", shards=4, priorities=(2, 1)))
    keyed = encode(Job(id="1", queue="q", task="t", key="user-7", priority=1))
    shard = shard_for(peek_key(keyed), 4, 0)
    for spread in range(4):
        assert routes.of_raw(keyed, spread) == (names.ready_key("ns", "q", shard, 1), "")
    unkeyed = encode(Job(id="2", queue="q", task="t"))
    assert routes.of_raw(unkeyed, 6) == (names.ready_key("ns", "q", 2, 0), "")
    assert routes.ready_list(b"user-7", 1, 0) == names.ready_key("ns", "q", shard, 1)


def test_bytes_that_are_not_a_job_go_to_level_zero():
    routes = Routes.of("ns", QueueSpec("q", shards=2, priorities=(2, 1)))
    assert routes.of_raw(b'{"priority": -3}', 1) == (names.ready_key("ns", "q", 1, 0), "")


def test_the_default_tenant_fallback_is_written_only_in_routing():
    root = Path(__file__).resolve().parents[2]
    writers = [path.relative_to(root).as_posix()
               for package in ("jobpipe", "ingest", "bridge", "consumers", "loadtest")
               for path in sorted((root / package).rglob("*.py"))
               if "DEFAULT_TENANT" in path.read_text()]
    assert writers == ["jobpipe/routing.py"], "use jobpipe.routing.tenant_or_default"

"""Where a parked job goes back to (pure part of consumers.control)."""

from __future__ import annotations

from consumers.control import destination
from jobpipe import names
from jobpipe.envelope import Job, encode, peek_key
from jobpipe.topology import QueueSpec, shard_for


def test_a_fair_queue_job_goes_back_to_its_tenant_list():
    spec = QueueSpec("q", fair=True)
    raw = encode(Job(id="1", queue="q", task="t", tenant="acme"))
    assert destination("ns", spec, raw, "acme", 0) == names.tenant_ready_key("ns", "q", "acme")


def test_a_keyed_job_goes_back_to_its_shard_at_its_level():
    spec = QueueSpec("q", shards=4, priorities=(2, 1))
    raw = encode(Job(id="1", queue="q", task="t", key="user-7", priority=1))
    shard = shard_for(peek_key(raw), 4, 0)
    assert destination("ns", spec, raw, "acme", 3) == names.ready_key("ns", "q", shard, 1)


def test_bytes_that_are_not_a_job_go_back_to_level_zero():
    spec = QueueSpec("q", shards=2)
    assert destination("ns", spec, b"\xff", "acme", 1) == names.ready_key("ns", "q", 1, 0)

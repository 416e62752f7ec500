"""The sans-I/O core: placement, batching, and refusals before any write."""

from __future__ import annotations

import types

import orjson
import pytest

import ingest
from ingest.intake import Intake, InvalidJobs, JobRequest
from jobpipe import names
from jobpipe.errors import JobRejected, JobTooLarge, NotSerializable, UnknownQueue
from jobpipe.options import JobOptions
from jobpipe.settings import load_settings
from jobpipe.topology import shard_for


@pytest.fixture
def intake():
    settings = load_settings(None, environ={}, overrides={"namespace": "ns", "queues": {
        "q": {"shards": 4, "priorities": [3, 1], "max_job_bytes": 400},
        "fair": {"fair": True},
        "open": {"max_backlog": None, "shards": 2},
    }})
    return Intake(settings)


def test_keyed_jobs_always_land_on_the_keys_shard(intake):
    plan = intake.plan_many("q", "t", [1, 2, 3], JobOptions(key="user-7"))
    shard = shard_for(b"user-7", 4, 0)
    assert plan.lists is not None
    assert [key for key, _ in plan.lists] == [names.ready_key("ns", "q", shard, 0)]
    assert [orjson.loads(j)["args"] for j in plan.lists[0][1]] == [1, 2, 3]


def test_unkeyed_batches_spread_over_every_shard_of_the_level(intake):
    plan = intake.plan_many("q", "t", list(range(8)), JobOptions(priority=1))
    assert plan.lists is not None
    assert sorted(key for key, _ in plan.lists) == [names.ready_key("ns", "q", s, 1)
                                                   for s in range(4)]
    assert sum(len(jobs) for _, jobs in plan.lists) == 8
    assert plan.backlog_keys == 8  # every ready list of both levels is counted


def test_fair_delayed_and_unique_plans_go_through_the_script(intake):
    fair = intake.plan_many("fair", "t", [1], JobOptions(tenant="acme"))
    assert fair.lists is None
    assert names.tenant_ready_key("ns", "fair", "acme") in fair.keys
    assert names.tenants_key("ns", "fair") in fair.keys
    delayed = intake.plan_many("q", "t", [1], JobOptions(delay_s=60))
    assert delayed.lists is None
    assert names.delayed_key("ns", "q") in delayed.keys
    unique = intake.plan_many("q", "t", [1], JobOptions(idempotency_key="i", unique_for_s=9))
    assert unique.lists is None
    assert unique.unique_jobs == [0]
    assert unique.result_ids(["first-id"]) == ["first-id"]


def test_unbounded_queue_counts_no_lists(intake):
    plan = intake.plan_many("open", "t", [1], JobOptions())
    assert plan.backlog_keys == 0
    assert plan.args[0] == 0


@pytest.mark.parametrize(("call", "error"), [
    (lambda i: i.plan_many("nope", "t", [1], JobOptions()), UnknownQueue),
    (lambda i: i.plan_many("q", "t", [object()], JobOptions()), NotSerializable),
    (lambda i: i.plan_many("q", "t", ["x" * 500], JobOptions()), JobTooLarge),
    (lambda i: i.plan_many("q", "", [1], JobOptions()), JobRejected),
    (lambda i: i.plan_many("q", "t", [1, 2], JobOptions(idempotency_key="k")), JobRejected),
])
def test_bad_input_raises_a_typed_error(intake, call, error):
    with pytest.raises(error):
        call(intake)


def test_mixed_batches_report_every_bad_job_by_index(intake):
    requests = [JobRequest("t", 1), JobRequest("t", {1}), JobRequest("t", 2, JobOptions(
        priority=9)), JobRequest("t", "x" * 500)]
    with pytest.raises(InvalidJobs) as info:
        intake.plan_jobs("q", requests)
    assert [i for i, _ in info.value.problems] == [1, 2, 3]


def test_mixed_batches_keep_order_within_a_list(intake):
    plan = intake.plan_jobs("q", [JobRequest("a", n, JobOptions(key="k")) for n in range(5)])
    assert plan.lists is not None
    assert len(plan.lists) == 1
    assert [orjson.loads(j)["args"] for j in plan.lists[0][1]] == list(range(5))


def test_empty_batch_is_an_empty_plan(intake):
    assert intake.plan_many("q", "t", [], JobOptions()).ids == []


def test_exports_match_all():
    # Submodules (loaded by whichever test imported them first) are not exports.
    public = {name for name, value in vars(ingest).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(ingest.__all__)

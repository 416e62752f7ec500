"""Option validation: every bad option is a JobRejected naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobpipe.errors import JobRejected
from jobpipe.options import OPTION_NAMES, JobOptions
from jobpipe.routing import DEFAULT_TENANT
from jobpipe.topology import QueueSpec

NOW_NS = 1_700_000_000 * 10**9
SPEC = QueueSpec("q", priorities=(3, 1), max_attempts=7)
FAIR = QueueSpec("f", fair=True)


def test_defaults_come_from_the_queue():
    resolved = JobOptions().resolve(SPEC, NOW_NS)
    assert (resolved.priority, resolved.max_attempts, resolved.run_at_ns) == (0, 7, None)
    assert resolved.tenant is None


def test_fair_queue_jobs_without_tenant_use_default():
    assert JobOptions().resolve(FAIR, NOW_NS).tenant == DEFAULT_TENANT


def test_delay_sets_run_at_and_zero_delay_is_ready_now():
    assert JobOptions(delay_s=2.5).resolve(SPEC, NOW_NS).run_at_ns == NOW_NS + 2_500_000_000
    assert JobOptions(delay_s=0).resolve(SPEC, NOW_NS).run_at_ns is None


def test_run_at_accepts_aware_datetimes_and_epoch_seconds():
    at = datetime.fromtimestamp(NOW_NS / 1e9, UTC) + timedelta(seconds=60)
    assert JobOptions(run_at=at).resolve(SPEC, NOW_NS).run_at_ns == NOW_NS + 60 * 10**9
    assert JobOptions(run_at=NOW_NS / 1e9 + 1).resolve(SPEC, NOW_NS).run_at_ns == NOW_NS + 10**9


def test_unique_window_rounds_up_to_whole_seconds():
    opts = JobOptions(idempotency_key="k", unique_for_s=0.2).resolve(SPEC, NOW_NS)
    assert opts.unique_ttl_s == 1


@pytest.mark.parametrize(("options", "message"), [
    (JobOptions(delay_s=-1), "delay_s must be >= 0"),
    (JobOptions(delay_s=float("nan")), "delay_s must be a number"),
    (JobOptions(delay_s=1, run_at=5.0), "not both"),
    (JobOptions(run_at=datetime(2030, 1, 1)), "timezone-aware"),
    (JobOptions(priority=2), r"priority must be an integer in 0\.\.1"),
    (JobOptions(priority=True), "priority"),
    (JobOptions(max_attempts=0), "max_attempts"),
    (JobOptions(tenant="bad tenant!"), "tenant"),
    (JobOptions(key=5), "key must be a string"),  # type: ignore[arg-type]
    (JobOptions(unique_for_s=10), "needs an idempotency_key"),
    (JobOptions(idempotency_key="k", unique_for_s=0), "unique_for_s must be > 0"),
    (JobOptions(idempotency_key=""), "idempotency_key"),
])
def test_bad_options_are_rejected_with_one_clear_message(options, message):
    with pytest.raises(JobRejected, match=message):
        options.resolve(SPEC, NOW_NS)


def test_every_option_has_one_type_rule_and_resolve_applies_it():
    anything = object()
    assert [name for name, _ in JobOptions(**dict.fromkeys(OPTION_NAMES, anything)).wrong_types()
            ] == list(OPTION_NAMES)
    options = JobOptions(run_at="tomorrow", max_attempts=2.5)  # type: ignore[arg-type]
    assert options.wrong_types() == [("run_at", "must be an aware datetime or epoch seconds"),
                                     ("max_attempts", "must be an integer")]
    with pytest.raises(JobRejected, match="run_at must be an aware datetime or epoch seconds"):
        options.resolve(SPEC, NOW_NS)

"""Weighted deficit round robin and the lag gate."""

from __future__ import annotations

from collections import Counter

import pytest

from bridge.fair import FairScheduler, lag_allows


def drain(sched: FairScheduler, backlog: dict[str, int], limit: int,
          takes: int) -> list[tuple[str, int]]:
    """Simulate a bridge taking from tenant lists; returns (tenant, taken) per take."""
    out = []
    for _ in range(takes):
        pick = sched.next_take(limit)
        if pick is None:
            sched.refresh([t for t, n in backlog.items() if n > 0])
            pick = sched.next_take(limit)
            if pick is None:
                break
        tenant, n = pick
        taken = min(n, backlog[tenant])
        backlog[tenant] -= taken
        sched.record(tenant, n, taken)
        if taken:
            out.append((tenant, taken))
    return out


def test_newcomer_is_served_within_one_round_of_a_huge_backlog():
    sched = FairScheduler(quantum=100)
    backlog = {"a": 100_000}
    drain(sched, backlog, 100, 5)
    backlog["b"] = 100
    takes = drain(sched, backlog, 100, 10)
    b_at = [i for i, (t, _) in enumerate(takes) if t == "b"]
    a_before_b = sum(n for t, n in takes[: b_at[-1]] if t == "a")
    assert a_before_b <= 2 * 100
    assert sum(n for t, n in takes if t == "b") == 100


def test_weights_share_takes_in_proportion():
    sched = FairScheduler(quantum=10, weights={"big": 3})
    backlog = {"big": 10_000, "small": 10_000}
    takes = drain(sched, backlog, 1000, 200)
    jobs = Counter()
    for tenant, n in takes:
        jobs[tenant] += n
    assert jobs["big"] == 3 * jobs["small"]


def test_paused_tenants_are_skipped():
    sched = FairScheduler(quantum=10)
    sched.refresh(["a", "b"], paused=["b"])
    assert sched.tenants == ["a"]
    assert sched.next_take(100) == ("a", 10)


def test_credit_above_limit_spans_several_takes():
    sched = FairScheduler(quantum=250)
    sched.refresh(["a"])
    assert sched.next_take(100) == ("a", 100)
    sched.record("a", 100, 100)
    assert sched.next_take(100) == ("a", 100)
    sched.record("a", 100, 100)
    assert sched.next_take(100) == ("a", 50)
    sched.record("a", 50, 50)
    assert sched.next_take(100) is None


def test_an_emptied_list_keeps_no_credit():
    sched = FairScheduler(quantum=100)
    sched.refresh(["a"])
    assert sched.next_take(100) == ("a", 100)
    sched.record("a", 100, 3)
    assert sched.next_take(100) is None
    sched.refresh(["a"])
    assert sched.next_take(1000) == ("a", 100)


def test_tenants_keep_their_turn_order_across_rounds():
    sched = FairScheduler(quantum=1)
    sched.refresh(["b", "a"])
    sched.refresh(["c", "a", "b"])
    assert sched.tenants == ["a", "b", "c"]


def test_quantum_must_be_positive():
    with pytest.raises(ValueError, match="quantum"):
        FairScheduler(quantum=0)


@pytest.mark.parametrize(("lag", "sent", "bound", "allowed"), [
    (None, 0, None, True),
    (None, 0, 100, False),
    (50, 0, 100, True),
    (50, 49, 100, True),
    (50, 50, 100, False),
    (500, 0, 100, False),
])
def test_lag_gate(lag, sent, bound, allowed):
    assert lag_allows(lag, sent, bound) is allowed

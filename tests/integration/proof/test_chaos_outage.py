"""A downstream outage: the handler fails 100% for a while, then recovers."""

from __future__ import annotations

import itertools
import statistics
import time
from collections import defaultdict

import pytest
from confluent_kafka.admin import AdminClient

from jobpipe import names
from jobpipe.admin import member_partitions
from jobpipe.connections import kafka_admin_config
from loadtest.dead_letters import read_dead_letters
from loadtest.ledger import read_role
from tests.integration.proof.harness import Figures

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _attempts(p) -> dict[str, list[tuple[int, int]]]:
    """job id -> [(attempt, ns)] of every handler call, in time order."""
    lines, _ = read_role(p.ledger_dir, "attempts")
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for line, count in lines.items():
        job_id, attempt, at_ns = line.split()
        out[job_id].extend([(int(attempt), int(at_ns))] * count)
    for calls in out.values():
        calls.sort(key=lambda c: c[1])
    return out


def _relay_holds(p, partitions: int) -> bool:
    """Whether the retry relay's group holds ``partitions`` tier partitions."""
    admin = AdminClient(kafka_admin_config(p.settings.kafka))
    return sum(member_partitions(admin, names.group_id(p.settings.namespace, "retry"))) \
        == partitions


def test_outage_shorter_than_the_retry_horizon_dead_letters_nothing(make_pipeline, calm_stack):
    jobs, outage_s = 500, 4.0
    tiers, max_attempts, jitter = [1, 2], 6, 0.5  # horizon: 1 + 2 + 2 + 2 + 2 = 9 s > outage
    p = make_pipeline(calm_stack, queue={"retry_tiers_s": tiers, "max_attempts": max_attempts,
                                         "retry_jitter": jitter})
    outage = p.root / "outage"
    outage.touch()
    p.start_bridge()
    p.start_worker()
    # The jitter is read off the first retries' waits: the relay must be reading
    # the tier topics before the jobs fail, or it finds them all due at once (its
    # group joined 2.4 s late in one CI run: a spread of 0.17 s).
    tier_partitions = len(tiers) * p.settings.topology.get("default").partitions
    p.wait_for(lambda: _relay_holds(p, tier_partitions), 60, "the retry relay to join")
    started = time.monotonic()
    p.produce(jobs, max_attempts=max_attempts)
    p.wait_for(lambda: len(_attempts(p)) == jobs, 60, "every job to fail once")
    time.sleep(max(0.0, outage_s - (time.monotonic() - started)))  # the outage lasts
    outage.unlink()
    report = p.wait_all_done(timeout_s=90)
    calls = _attempts(p)
    dead = read_dead_letters(p.settings)
    total_calls = sum(len(c) for c in calls.values())
    gaps_s = [(b[1] - a[1]) / 1e9 for c in calls.values() for a, b in itertools.pairwise(c)
              if b[0] == a[0] + 1]
    first_gaps_s = [(c[1][1] - c[0][1]) / 1e9 for c in calls.values()
                    if len(c) > 1 and (c[0][0], c[1][0]) == (1, 2)]
    deciles = statistics.quantiles(first_gaps_s, n=10)
    spread_s = deciles[-1] - deciles[0]  # p90 - p10 of the first retry's wait
    print(Figures("downstream outage", report, {
        "outage_s": outage_s, "dlq_records": len(dead), "handler_calls": total_calls,
        "max_attempt": max(a for c in calls.values() for a, _ in c),
        "min_retry_gap_s": round(min(gaps_s), 2) if gaps_s else None,
        "first_retry_wait_p10_p90_s": (round(deciles[0], 2), round(deciles[-1], 2))}).line())
    assert report.lost == 0, report.lost_ids
    assert dead == [], [(d.job_id, d.reason) for d in dead[:5]]
    assert all(a <= max_attempts for c in calls.values() for a, _ in c)
    # Retry traffic is bounded: within the outage a job is tried at most once per
    # tier delay, plus the final success.
    assert total_calls <= jobs * (2 + outage_s / min(tiers)) + report.duplicates
    # Backoff is respected: no retry comes before its tier's delay.
    assert min(gaps_s) >= min(tiers) * 0.9
    # Backoff has jitter: 500 jobs that failed within moments of each other retry
    # spread over the jitter window (up to 0.5 s here), not all at once.
    assert spread_s >= min(tiers) * jitter * 0.4, deciles


def test_outage_longer_than_the_horizon_dead_letters_each_job_once(make_pipeline, calm_stack):
    jobs, max_attempts = 100, 3
    p = make_pipeline(calm_stack, queue={"retry_tiers_s": [0.5, 1], "max_attempts": max_attempts})
    (p.root / "outage").touch()  # never recovers
    p.start_bridge()
    p.start_worker()
    p.produce(jobs, max_attempts=max_attempts)
    p.wait_for(lambda: len(read_dead_letters(p.settings)) >= jobs, 90,
               "every job to be dead-lettered")
    dead = read_dead_letters(p.settings)
    report = p.report(dead_lettered=True)
    calls = _attempts(p)
    print(Figures("outage past horizon", report, {
        "dlq_records": len(dead), "handler_calls": sum(len(c) for c in calls.values())}).line())
    assert len(dead) == jobs
    assert len({d.job_id for d in dead}) == jobs, "each job dead-lettered exactly once"
    assert {d.reason for d in dead} == {"exhausted"}
    assert report.lost == 0
    assert all(len(c) == max_attempts for c in calls.values())

"""bench ingest: the CPU one enqueue_many call costs, here and in a real Redis."""

import pytest

from loadtest.bench.ingest import bench_call_cpu

pytestmark = pytest.mark.integration


def test_cpu_per_call_is_measured_per_size_and_leaves_no_keys(settings, redis_client,
                                                               namespace):
    costs = bench_call_cpu(settings, [1, 200], calls=150)

    assert [cost.jobs for cost in costs] == [1, 200]
    for cost in costs:
        assert cost.client_us > 0
        assert cost.redis_us is not None
        assert cost.redis_us > 0
    # The reading follows the jobs, not just the calls: a call of one job cost
    # Redis ~32 µs and one of 500 ~400 µs (docs/benchmarks.md), so 2x leaves
    # room for a noisy box and still fails a reading blind to the jobs.
    assert costs[1].redis_us > 2 * costs[0].redis_us
    assert list(redis_client.scan_iter(match=f"{namespace}*")) == []

"""bench ingest: the CPU one enqueue_many call costs, here and in a real Redis."""

import pytest

from loadtest.bench.ingest import bench_call_cpu

pytestmark = pytest.mark.integration


def test_cpu_per_call_is_measured_per_size_and_leaves_no_keys(settings, redis_client,
                                                               namespace):
    rows = bench_call_cpu(settings, [1, 200], calls=150)

    assert [row["jobs"] for row in rows] == [1, 200]
    for row in rows:
        assert row["client_us"] > 0
        assert row["redis_us"] is not None
        assert row["redis_us"] > 0
    # 200 jobs a call cost Redis several times what one job does.
    assert rows[1]["redis_us"] > 2 * rows[0]["redis_us"]
    assert list(redis_client.scan_iter(match=f"{namespace}*")) == []
